// bind_fake_quant.h — the fake-quant family's runner, reused by the op families built on it (LSQ, fused observer).
#pragma once

#include <torch/extension.h>

#include <tuple>
#include <vector>

#include "params.h"

namespace fakequant {

// (output, one-bit-per-element mask or an empty tensor, walk order for mask_grad).
using FqResult = std::tuple<at::Tensor, at::Tensor, std::vector<int64_t>>;

// Fake-quantizes x with the kernel for the active ISA; scale / zero_point hold one float per
// channel of `axis` (one in all when axis < 0); relu: of relu(x), with the ReLU's bits as the mask's
// second plane; in_place: the output overwrites x (see fake_quant_outputs).
// Checks only x's dtype: callers check the rest.
FqResult run_fake_quant(const at::Tensor& x, const float* scale, const float* zero_point, int64_t axis,
                        ZeroPointMode mode, bool int64_cast, int64_t qmin, int64_t qmax, bool need_mask,
                        bool relu = false, bool in_place = false);

// A one-element tensor's value: a fake-quant module's flag or eps, read on every call, so CPU uint8 / int64 /
// float32 ones are read in place without a dispatcher call; others go through item().
double single_value(const at::Tensor& t);

// dx = dy * mask; `order` is the walk order the forward returned with the mask. relu: the mask of a
// fused ReLU (run_fake_quant with relu), whose second bit plane zeroes dx (+0) where the ReLU stopped it.
// in_place: dx overwrites dy (which must be dense and nobody else's).
at::Tensor mask_grad(const at::Tensor& dy, const at::Tensor& mask, const std::vector<int64_t>& order,
                     bool relu = false, bool in_place = false);

}  // namespace fakequant
