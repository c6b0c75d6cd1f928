// bind_lsq.cpp — learnable (LSQ) fake quant: forward through the fake-quant runner, backward in one pass
// with per-block, per-channel partial sums added up in block order.
#include <optional>
#include <tuple>
#include <vector>

#include "bind.h"
#include "bind_fake_quant.h"
#include "checks.h"
#include "cpu/lsq.h"
#include "dispatch.h"
#include "layout.h"
#include "lsq_autograd.h"
#include "out_cache.h"
#include "reduce.h"

namespace fakequant {
namespace {

using LsqKernel = void (*)(const LsqGradParams&, int64_t, int64_t, double*, double*);
constexpr LsqKernel kLsqGrad[] = {lsq_grad_ref, lsq_grad_avx2, lsq_grad_avx512};

// Checked qparams of one LSQ call (axis < 0: per tensor): float32 scales and torch's integer zero points.
struct LsqQParams {
  at::Tensor scale;
  std::vector<float> zero_point;
};

LsqQParams lsq_qparams(const at::Tensor& x, const at::Tensor& scale, const at::Tensor& zero_point, int64_t axis,
                       int64_t qmin, int64_t qmax, bool backward) {
  check_cpu(x, "input");
  check_float_input(x, "input");
  check_quant_range_has_zero(qmin, qmax);
  check_same_device({{"input", &x}, {"scale", &scale}, {"zero_point", &zero_point}});
  check_dtype(scale, "scale", {at::kFloat});
  check_dtype(zero_point, "zero_point", {at::kFloat});
  if (axis < 0) {
    check_single(scale, "scale");
    check_single(zero_point, "zero_point");
  } else {
    check_1d(scale, "scale", x.size(axis));
    check_1d(zero_point, "zero_point", x.size(axis));
  }
  const at::Tensor zp = zero_point.contiguous();
  const float* z = zp.data_ptr<float>();
  check_no_nan(z, zp.numel(), "zero_point");
  LsqQParams q{scale.contiguous(), std::vector<float>(zp.numel())};
  const bool per_tensor_backward = backward && axis < 0;
  for (int64_t c = 0; c < zp.numel(); ++c)
    q.zero_point[c] = lsq_zero_point(z[c], static_cast<float>(qmin), static_cast<float>(qmax), per_tensor_backward);
  return q;
}

bool same_strides(const at::Tensor& a, const at::Tensor& b) {
  for (int64_t d = 0; d < a.dim(); ++d)
    if (a.size(d) > 1 && a.stride(d) != b.stride(d)) return false;
  return true;
}

}  // namespace

at::Tensor lsq_forward(const at::Tensor& x, const at::Tensor& scale, const at::Tensor& zero_point, int64_t axis,
                       int64_t qmin, int64_t qmax) {
  const LsqQParams q = lsq_qparams(x, scale, zero_point, axis, qmin, qmax, false);
  return std::get<0>(run_fake_quant(x, q.scale.data_ptr<float>(), q.zero_point.data(), axis,
                                    ZeroPointMode::RoundThenAdd, axis >= 0, qmin, qmax, false));
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> lsq_backward(const at::Tensor& dy, const at::Tensor& input,
                                                            const at::Tensor& scale, const at::Tensor& zero_point,
                                                            int64_t axis, int64_t qmin, int64_t qmax,
                                                            double grad_factor) {
  const LsqQParams q = lsq_qparams(input, scale, zero_point, axis, qmin, qmax, true);
  check_cpu(dy, "grad");
  check_same_shape(input, "input", dy, "grad");
  check_dtype(dy, "grad", {input.scalar_type()});
  // x, dy and dx share one layout: x's when it is dense, else a contiguous one.
  const at::Tensor x = input.is_non_overlapping_and_dense() ? input : input.contiguous();
  const at::Tensor g = same_strides(dy, x) ? dy : at::empty_like(x).copy_(dy);
  at::Tensor dx = output_like(x);
  at::Tensor dscale = at::empty(scale.sizes(), scale.options());
  at::Tensor dzero_point = at::empty(zero_point.sizes(), zero_point.options());
  const int64_t channels = static_cast<int64_t>(q.zero_point.size());
  LsqGradParams p;
  p.dtype = check_float_input(x, "input");
  p.it = make_strided(walk_order(x, axis), x, x, axis, &p.ch_dim);
  p.x = x.data_ptr();
  p.dy = g.data_ptr();
  p.dx = dx.data_ptr();
  p.scale = q.scale.data_ptr<float>();
  p.zero_point = q.zero_point.data();
  p.quant_min = static_cast<float>(qmin);
  p.quant_max = static_cast<float>(qmax);
  p.grad_factor = static_cast<float>(grad_factor);
  const BlockPlan plan(x.numel(), channels);
  std::vector<double> partial(plan.count * 2 * channels, 0.0);  // per block: dscale sums, dzero_point sums
  const LsqKernel k = pick_kernel(kLsqGrad);
  for_each_block(plan, [&](int64_t b, int64_t begin, int64_t end) {
    double* sums = partial.data() + b * 2 * channels;
    k(p, begin, end, sums, sums + channels);
  });
  float* ds = dscale.data_ptr<float>();
  float* dz = dzero_point.data_ptr<float>();
  for (int64_t c = 0; c < channels; ++c) {
    double s = 0, z = 0;
    for (int64_t b = 0; b < plan.count; ++b) {
      s += partial[b * 2 * channels + c];
      z += partial[b * 2 * channels + channels + c];
    }
    ds[c] = static_cast<float>(s);
    dz[c] = static_cast<float>(z);
  }
  return {dx, dscale, dzero_point};
}

void bind_lsq(pybind11::module_& m) {
  using namespace pybind11::literals;
  m.def(
      "lsq_per_tensor",
      [](const at::Tensor& x, const at::Tensor& scale, const at::Tensor& zero_point, int64_t qmin, int64_t qmax) {
        return lsq_forward(x, scale, zero_point, -1, qmin, qmax);
      },
      "input"_a, "scale"_a, "zero_point"_a, "quant_min"_a, "quant_max"_a);
  m.def(
      "lsq_per_channel",
      [](const at::Tensor& x, const at::Tensor& scale, const at::Tensor& zero_point, int64_t axis, int64_t qmin,
         int64_t qmax) {
        check_axis(x, axis);
        return lsq_forward(x, scale, zero_point, axis, qmin, qmax);
      },
      "input"_a, "scale"_a, "zero_point"_a, "axis"_a, "quant_min"_a, "quant_max"_a);
  m.def(
      "lsq_per_tensor_backward",
      [](const at::Tensor& dy, const at::Tensor& x, const at::Tensor& scale, const at::Tensor& zero_point,
         int64_t qmin, int64_t qmax, double grad_factor) {
        return lsq_backward(dy, x, scale, zero_point, -1, qmin, qmax, grad_factor);
      },
      "grad"_a, "input"_a, "scale"_a, "zero_point"_a, "quant_min"_a, "quant_max"_a, "grad_factor"_a);
  m.def(
      "lsq_per_channel_backward",
      [](const at::Tensor& dy, const at::Tensor& x, const at::Tensor& scale, const at::Tensor& zero_point,
         int64_t axis, int64_t qmin, int64_t qmax, double grad_factor) {
        check_axis(x, axis);
        return lsq_backward(dy, x, scale, zero_point, axis, qmin, qmax, grad_factor);
      },
      "grad"_a, "input"_a, "scale"_a, "zero_point"_a, "axis"_a, "quant_min"_a, "quant_max"_a, "grad_factor"_a);
  // The same ops as C++ autograd nodes (backward: the two above).
  m.def(
      "lsq_per_tensor_autograd",
      [](const at::Tensor& x, const at::Tensor& scale, const at::Tensor& zero_point, int64_t qmin, int64_t qmax,
         double grad_factor) { return lsq_autograd(x, scale, zero_point, -1, qmin, qmax, grad_factor); },
      "input"_a, "scale"_a, "zero_point"_a, "quant_min"_a, "quant_max"_a, "grad_factor"_a);
  m.def(
      "lsq_per_channel_autograd",
      [](const at::Tensor& x, const at::Tensor& scale, const at::Tensor& zero_point, int64_t axis, int64_t qmin,
         int64_t qmax, double grad_factor) {
        check_axis(x, axis);
        return lsq_autograd(x, scale, zero_point, axis, qmin, qmax, grad_factor);
      },
      "input"_a, "scale"_a, "zero_point"_a, "axis"_a, "quant_min"_a, "quant_max"_a, "grad_factor"_a);
  // LearnableFakeQuantize.forward in one call (see lsq_module_forward): None where the module's own path must run.
  m.def(
      "lsq_module_forward",
      [](const at::Tensor& x, const at::Tensor& static_on, const at::Tensor& fake_quant_on, const at::Tensor& eps,
         const at::Tensor& scale, const at::Tensor& zero_point, const at::Tensor& min_val, const at::Tensor& max_val,
         const at::Tensor& obs_eps, double averaging_const, int64_t obs_qmin, int64_t obs_qmax, int64_t qmin,
         int64_t qmax, int64_t ch_axis, bool per_channel, bool symmetric, bool grad_scaling) {
        return lsq_module_forward(x, {static_on, fake_quant_on, eps, scale, zero_point, min_val, max_val, obs_eps,
                                      averaging_const, obs_qmin, obs_qmax, qmin, qmax, ch_axis, per_channel,
                                      symmetric, grad_scaling});
      },
      "input"_a, "static_enabled"_a, "fake_quant_enabled"_a, "eps"_a, "scale"_a, "zero_point"_a, "min_val"_a,
      "max_val"_a, "observer_eps"_a, "averaging_constant"_a, "observer_quant_min"_a, "observer_quant_max"_a,
      "quant_min"_a, "quant_max"_a, "ch_axis"_a, "per_channel"_a, "symmetric"_a, "use_grad_scaling"_a);
  m.def("lsq_isa", [] { return std::string(isa_name(dispatch_isa(Isa::Avx512))); });
}

}  // namespace fakequant
