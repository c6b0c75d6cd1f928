// masked_autograd.h — the CPU fake-quant ops as C++ autograd nodes: the forward kernel writes the one-bit
// mask, the node's backward is mask_grad (no Python autograd.Function on the hot path).
#pragma once

#include <torch/extension.h>

#include <functional>

#include "bind_fake_quant.h"

namespace fakequant {

// Runs fq(need_mask) and returns its output. When x requires a gradient (grad mode on) the output's
// grad_fn is dx = grad * mask (select: grad where the bit is set, +0 elsewhere); an undefined mask
// passes grad through unchanged.
at::Tensor with_mask_backward(const at::Tensor& x, const std::function<FqResult(bool)>& fq, bool select = false);

}  // namespace fakequant
