// checks.h — every input check of the bindings, written once; each raises a Python error that
// names the offending argument (ValueError for values, TypeError for dtypes, RuntimeError for devices).
#pragma once

#include <torch/extension.h>

#include <initializer_list>
#include <string>
#include <utility>

#include "params.h"

namespace fakequant {

// Largest |quant_min|, |quant_max|, |zero_point| we take: q stays exact in float.
constexpr int64_t kMaxQuantMagnitude = int64_t{1} << 24;

[[noreturn]] void value_error(const std::string& msg);
[[noreturn]] void type_error(const std::string& msg);

// input is a floating tensor our kernels read (float32, float16, bfloat16, float64).
DType check_float_input(const at::Tensor& t, const char* name);
// dtype is one of `allowed`.
void check_dtype(const at::Tensor& t, const char* name, std::initializer_list<at::ScalarType> allowed);
void check_quant_range(int64_t quant_min, int64_t quant_max);
// LSQ's gradients need quant_min <= 0 <= quant_max (as well as check_quant_range).
void check_quant_range_has_zero(int64_t quant_min, int64_t quant_max);
// Choosing qparams divides by quant_max - quant_min: quant_min < quant_max (as well as check_quant_range).
void check_quant_range_nonempty(int64_t quant_min, int64_t quant_max);
// A moving-average constant in [0, 1].
void check_averaging_const(double c);
// n floats with no NaN among them.
void check_no_nan(const float* v, int64_t n, const char* name);
void check_zero_point_in_range(int64_t zero_point, int64_t quant_min, int64_t quant_max, const char* name);
// Every tensor on the first one's device.
void check_same_device(std::initializer_list<std::pair<const char*, const at::Tensor*>> tensors);
// axis in [0, dim) for a tensor with at least one dim.
void check_axis(const at::Tensor& input, int64_t axis, const char* name = "axis");
// t is 1-D with n elements.
void check_1d(const at::Tensor& t, const char* name, int64_t n);
// b has a's shape.
void check_same_shape(const at::Tensor& a, const char* a_name, const at::Tensor& b, const char* b_name);
// t holds exactly one element.
void check_single(const at::Tensor& t, const char* name);
// Per-channel qparams: scale float32/bfloat16, zero_point int32/float32/half (float_zp_ok), both
// 1-D of input.size(axis), same device.
void check_per_channel_qparams(const at::Tensor& input, const at::Tensor& scale, const at::Tensor& zero_point,
                               int64_t axis, bool float_zp_ok);
// t has exactly `dim` dims.
void check_dim(const at::Tensor& t, const char* name, int64_t dim);
// A quantization scale: finite and > 0.
void check_scale(double scale, const char* name);
// The CPU kernels run here; CUDA tensors go to the CUDA kernels when they are built.
void check_cpu(const at::Tensor& t, const char* name);
// A fake-quant mask (int64 words) holds at least numel bits.
void check_mask_covers(const at::Tensor& mask, int64_t numel);
// The _C.cuda_* functions take CUDA tensors only.
void check_cuda(const at::Tensor& t, const char* name);
// t is contiguous (a buffer a kernel updates in place).
void check_contiguous(const at::Tensor& t, const char* name);

}  // namespace fakequant
