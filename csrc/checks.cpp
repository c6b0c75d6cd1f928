// checks.cpp — the shared input checks (see checks.h).
#include "checks.h"

#include <pybind11/pybind11.h>

#include <cmath>
#include <sstream>

namespace fakequant {

void value_error(const std::string& msg) { throw pybind11::value_error("fakequant: " + msg); }
void type_error(const std::string& msg) { throw pybind11::type_error("fakequant: " + msg); }

DType check_float_input(const at::Tensor& t, const char* name) {
  switch (t.scalar_type()) {
    case at::kFloat: return DType::F32;
    case at::kHalf: return DType::F16;
    case at::kBFloat16: return DType::BF16;
    case at::kDouble: return DType::F64;
    default:
      type_error(std::string(name) + " must be a float32, float16, bfloat16 or float64 tensor, got " +
                 std::string(c10::toString(t.scalar_type())));
  }
}

void check_dtype(const at::Tensor& t, const char* name, std::initializer_list<at::ScalarType> allowed) {
  for (auto a : allowed)
    if (t.scalar_type() == a) return;
  std::ostringstream os;
  os << name << " must have dtype";
  const char* sep = " ";
  for (auto a : allowed) {
    os << sep << c10::toString(a);
    sep = " or ";
  }
  os << ", got " << c10::toString(t.scalar_type());
  type_error(os.str());
}

void check_quant_range(int64_t quant_min, int64_t quant_max) {
  if (quant_min > quant_max)
    value_error("quant_min (" + std::to_string(quant_min) + ") must be <= quant_max (" +
                std::to_string(quant_max) + ")");
  if (quant_min < -kMaxQuantMagnitude || quant_max > kMaxQuantMagnitude)
    value_error("quant_min and quant_max must lie in [-2^24, 2^24]");
}

void check_quant_range_has_zero(int64_t quant_min, int64_t quant_max) {
  check_quant_range(quant_min, quant_max);
  if (quant_min > 0 || quant_max < 0)
    value_error("the quantization range [" + std::to_string(quant_min) + ", " + std::to_string(quant_max) +
                "] must contain 0 (quant_min <= 0 <= quant_max) for learnable fake quantization");
}

void check_quant_range_nonempty(int64_t quant_min, int64_t quant_max) {
  check_quant_range(quant_min, quant_max);
  if (quant_min == quant_max)
    value_error("quant_min and quant_max (both " + std::to_string(quant_min) +
                ") must differ to choose a scale and zero point");
}

void check_averaging_const(double c) {
  if (!(c >= 0.0 && c <= 1.0))
    value_error("averaging_const must lie in [0, 1], got " + std::to_string(c));
}

void check_no_nan(const float* v, int64_t n, const char* name) {
  for (int64_t i = 0; i < n; ++i)
    if (std::isnan(v[i])) value_error(std::string(name) + " must not contain NaN");
}

void check_zero_point_in_range(int64_t zero_point, int64_t quant_min, int64_t quant_max, const char* name) {
  if (zero_point < quant_min || zero_point > quant_max)
    value_error(std::string(name) + " (" + std::to_string(zero_point) + ") must lie in [quant_min, quant_max] = [" +
                std::to_string(quant_min) + ", " + std::to_string(quant_max) + "]");
}

void check_same_device(std::initializer_list<std::pair<const char*, const at::Tensor*>> tensors) {
  const auto& first = *tensors.begin();
  for (const auto& t : tensors) {
    if (t.second->device() != first.second->device()) {
      throw std::runtime_error(std::string("fakequant: ") + t.first + " is on " + t.second->device().str() +
                               " but " + first.first + " is on " + first.second->device().str());
    }
  }
}

void check_axis(const at::Tensor& input, int64_t axis, const char* name) {
  if (input.dim() == 0) value_error("input must have at least one dimension for a per-channel op, got a 0-dim tensor");
  if (axis < 0 || axis >= input.dim())
    value_error(std::string(name) + " (" + std::to_string(axis) + ") must lie in [0, " + std::to_string(input.dim()) +
                ") for an input with " + std::to_string(input.dim()) + " dims");
}

void check_1d(const at::Tensor& t, const char* name, int64_t n) {
  if (t.dim() != 1) value_error(std::string(name) + " must be a 1-D tensor, got " + std::to_string(t.dim()) + " dims");
  if (t.size(0) != n)
    value_error(std::string(name) + " must have one element per channel (" + std::to_string(n) + "), got " +
                std::to_string(t.size(0)));
}

void check_same_shape(const at::Tensor& a, const char* a_name, const at::Tensor& b, const char* b_name) {
  if (a.sizes() != b.sizes()) {
    std::ostringstream os;
    os << b_name << " must have the shape of " << a_name << " " << a.sizes() << ", got " << b.sizes();
    value_error(os.str());
  }
}

void check_single(const at::Tensor& t, const char* name) {
  if (t.numel() != 1) value_error(std::string(name) + " must hold one element, got " + std::to_string(t.numel()));
}

void check_per_channel_qparams(const at::Tensor& input, const at::Tensor& scale, const at::Tensor& zero_point,
                               int64_t axis, bool float_zp_ok) {
  check_axis(input, axis);
  check_same_device({{"input", &input}, {"scale", &scale}, {"zero_point", &zero_point}});
  check_dtype(scale, "scale", {at::kFloat, at::kBFloat16});
  if (float_zp_ok) {
    check_dtype(zero_point, "zero_point", {at::kInt, at::kFloat, at::kHalf});
  } else {
    check_dtype(zero_point, "zero_point", {at::kInt});
  }
  check_1d(scale, "scale", input.size(axis));
  check_1d(zero_point, "zero_point", input.size(axis));
}

void check_dim(const at::Tensor& t, const char* name, int64_t dim) {
  if (t.dim() != dim)
    value_error(std::string(name) + " must have " + std::to_string(dim) + " dims, got " + std::to_string(t.dim()));
}

void check_scale(double scale, const char* name) {
  if (!(scale > 0.0) || !std::isfinite(scale))
    value_error(std::string(name) + " must be a finite number > 0, got " + std::to_string(scale));
}

void check_cpu(const at::Tensor& t, const char* name) {
  if (!t.device().is_cpu())
    throw std::runtime_error(std::string("fakequant: ") + name + " is on " + t.device().str() +
                             "; this op has no kernel for that device in this build");
}

void check_mask_covers(const at::Tensor& mask, int64_t numel) {
  if (mask.numel() * 64 < numel) value_error("mask is too short for grad");
}

void check_cuda(const at::Tensor& t, const char* name) {
  if (!t.is_cuda())
    throw std::runtime_error(std::string("fakequant: ") + name + " is on " + t.device().str() +
                             "; the CUDA kernels need CUDA tensors");
}

void check_contiguous(const at::Tensor& t, const char* name) {
  if (!t.is_contiguous()) value_error(std::string(name) + " must be contiguous");
}

}  // namespace fakequant
