// bind_fake_quant.cpp — tensors to FakeQuantParams for the per-tensor / per-channel fake-quant ops.
#include <tuple>
#include <vector>

#include "bind.h"
#include "bind_fake_quant.h"
#include "checks.h"
#include "cpu/fake_quant.h"
#include "dispatch.h"
#include "layout.h"
#include "masked_autograd.h"
#include "out_cache.h"

namespace fakequant {
namespace {

using FqKernel = void (*)(const FakeQuantParams&, int64_t, int64_t);
using GradKernel = void (*)(const MaskGradParams&, int64_t, int64_t);
constexpr FqKernel kFakeQuant[] = {fake_quant_ref, fake_quant_avx2, fake_quant_avx512};
constexpr GradKernel kMaskGrad[] = {mask_grad_ref, mask_grad_avx2, mask_grad_avx512};

}  // namespace

FqResult run_fake_quant(const at::Tensor& x, const float* scale, const float* zero_point, int64_t axis,
                        ZeroPointMode mode, bool int64_cast, int64_t qmin, int64_t qmax, bool need_mask,
                        bool relu, bool in_place) {
  FakeQuantParams p;
  p.dtype = check_float_input(x, "input");
  FakeQuantOutputs o = fake_quant_outputs(x, axis, need_mask, &p.it, &p.ch_dim, relu ? 2 : 1, in_place);
  p.x = x.data_ptr();
  p.y = o.y.data_ptr();
  p.mask = need_mask ? reinterpret_cast<uint64_t*>(o.mask.data_ptr<int64_t>()) : nullptr;
  p.relu_mask = need_mask && relu ? p.mask + mask_words(x.numel()) : nullptr;
  p.scale = scale;
  p.zero_point = zero_point;
  p.zp_mode = mode;
  p.int64_cast = int64_cast;
  p.quant_min = static_cast<float>(qmin);
  p.quant_max = static_cast<float>(qmax);
  p.relu = relu;
  const FqKernel k = pick_kernel(kFakeQuant);
  parallel_blocks(x.numel(), [&](int64_t b, int64_t e) { k(p, b, e); });
  return {o.y, o.mask, o.order};
}

namespace {

FqResult per_tensor_impl(const at::Tensor& x, double scale, int64_t zero_point, int64_t qmin, int64_t qmax,
                         bool need_mask) {
  check_cpu(x, "input");
  const float s = static_cast<float>(scale), zp = static_cast<float>(zero_point);
  return run_fake_quant(x, &s, &zp, -1, ZeroPointMode::RoundThenAdd, false, qmin, qmax, need_mask);
}

FqResult per_tensor(const at::Tensor& x, double scale, int64_t zero_point, int64_t qmin, int64_t qmax,
                    bool need_mask) {
  check_quant_range(qmin, qmax);
  check_zero_point_in_range(zero_point, qmin, qmax, "zero_point");
  return per_tensor_impl(x, scale, zero_point, qmin, qmax, need_mask);
}

// torch's tensor-qparams overload: scale read as float, zero_point truncated to an integer, no
// range check on the zero point.
FqResult per_tensor_tensor_qparams(const at::Tensor& x, const at::Tensor& scale, const at::Tensor& zero_point,
                                   int64_t qmin, int64_t qmax, bool need_mask) {
  check_quant_range(qmin, qmax);
  check_same_device({{"input", &x}, {"scale", &scale}, {"zero_point", &zero_point}});
  check_single(scale, "scale");
  check_single(zero_point, "zero_point");
  const int64_t zp = zero_point.item().toLong();
  check_zero_point_in_range(zp, -kMaxQuantMagnitude, kMaxQuantMagnitude, "zero_point");
  return per_tensor_impl(x, scale.item().toFloat(), zp, qmin, qmax, need_mask);
}

FqResult per_channel(const at::Tensor& x, const at::Tensor& scale, const at::Tensor& zero_point, int64_t axis,
                     int64_t qmin, int64_t qmax, bool need_mask) {
  check_quant_range(qmin, qmax);
  check_per_channel_qparams(x, scale, zero_point, axis, /*float_zp_ok=*/true);
  check_cpu(x, "input");
  const bool int_zp = zero_point.scalar_type() == at::kInt;
  const at::Tensor s = scale.to(at::kFloat).contiguous(), zp = zero_point.to(at::kFloat).contiguous();
  if (int_zp) {
    for (int64_t c = 0; c < zp.numel(); ++c)
      check_zero_point_in_range(static_cast<int64_t>(zp.data_ptr<float>()[c]), qmin, qmax, "zero_point");
  }
  const ZeroPointMode mode = int_zp ? ZeroPointMode::RoundThenAdd : ZeroPointMode::AddThenRound;
  return run_fake_quant(x, s.data_ptr<float>(), zp.data_ptr<float>(), axis, mode, true, qmin, qmax, need_mask);
}

}  // namespace

double single_value(const at::Tensor& t) {
  if (t.is_cpu() && t.numel() == 1) {
    if (t.scalar_type() == at::kByte) return *t.const_data_ptr<uint8_t>();
    if (t.scalar_type() == at::kLong) return static_cast<double>(*t.const_data_ptr<int64_t>());
    if (t.scalar_type() == at::kFloat) return *t.const_data_ptr<float>();
  }
  return t.item().toDouble();
}

at::Tensor mask_grad(const at::Tensor& dy, const at::Tensor& mask, const std::vector<int64_t>& order, bool relu,
                     bool in_place) {
  check_cpu(dy, "grad");
  MaskGradParams p;
  p.dtype = check_float_input(dy, "grad");
  check_mask_covers(mask, (relu ? 2 : 1) * mask_words(dy.numel()) * 64);
  at::Tensor dx = in_place ? dy : output_like(dy);
  p.it = make_strided(order, dy, dx);
  p.dy = dy.data_ptr();
  p.dx = dx.data_ptr();
  p.mask = reinterpret_cast<const uint64_t*>(mask.data_ptr<int64_t>());
  if (relu) p.relu_mask = p.mask + mask_words(dy.numel());
  const GradKernel k = pick_kernel(kMaskGrad);
  parallel_blocks(dy.numel(), [&](int64_t b, int64_t e) { k(p, b, e); });
  return dx;
}

void bind_fake_quant(pybind11::module_& m) {
  using namespace pybind11::literals;
  m.def("fake_quant_per_tensor", &per_tensor, "input"_a, "scale"_a, "zero_point"_a, "quant_min"_a, "quant_max"_a,
        "need_mask"_a);
  m.def("fake_quant_per_tensor_tq", &per_tensor_tensor_qparams, "input"_a, "scale"_a, "zero_point"_a,
        "quant_min"_a, "quant_max"_a, "need_mask"_a);
  m.def("fake_quant_per_channel", &per_channel, "input"_a, "scale"_a, "zero_point"_a, "axis"_a, "quant_min"_a,
        "quant_max"_a, "need_mask"_a);
  m.def("mask_grad", [](const at::Tensor& dy, const at::Tensor& mask, const std::vector<int64_t>& order, bool relu) {
    return mask_grad(dy, mask, order, relu);
  }, "grad"_a, "mask"_a, "order"_a, "relu"_a = false);
  // The same ops as autograd nodes (no need_mask argument): what fakequant.ops calls for CPU tensors.
  m.def("fake_quant_per_tensor_autograd", [](const at::Tensor& x, double s, int64_t zp, int64_t qmin, int64_t qmax) {
    return with_mask_backward(x, [&](bool need_mask) { return per_tensor(x, s, zp, qmin, qmax, need_mask); });
  }, "input"_a, "scale"_a, "zero_point"_a, "quant_min"_a, "quant_max"_a);
  m.def("fake_quant_per_tensor_tq_autograd", [](const at::Tensor& x, const at::Tensor& s, const at::Tensor& zp,
                                               int64_t qmin, int64_t qmax) {
    return with_mask_backward(x, [&](bool need_mask) {
      return per_tensor_tensor_qparams(x, s, zp, qmin, qmax, need_mask);
    });
  }, "input"_a, "scale"_a, "zero_point"_a, "quant_min"_a, "quant_max"_a);
  m.def("fake_quant_per_channel_autograd", [](const at::Tensor& x, const at::Tensor& s, const at::Tensor& zp,
                                             int64_t axis, int64_t qmin, int64_t qmax) {
    return with_mask_backward(x, [&](bool need_mask) { return per_channel(x, s, zp, axis, qmin, qmax, need_mask); });
  }, "input"_a, "scale"_a, "zero_point"_a, "axis"_a, "quant_min"_a, "quant_max"_a);
  m.def("fake_quant_isa", [] { return std::string(isa_name(dispatch_isa(Isa::Avx512))); });
}

}  // namespace fakequant
