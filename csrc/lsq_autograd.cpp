// lsq_autograd.cpp — the CPU LSQ op as a hand-written autograd node, and LearnableFakeQuantize's forward
// (moving-average observer, the observer's qparams rule, the LSQ op) in one call.
#include "lsq_autograd.h"

#include <cmath>
#include <limits>
#include <vector>

#include <torch/csrc/autograd/functions/utils.h>

#include "bind_fake_quant.h"
#include "checks.h"
#include "cpu/qparams.h"

namespace fakequant {
namespace {

using torch::autograd::SavedVariable;
using torch::autograd::variable_list;

// Gradients of input, scale and zero_point (the node's edges) by lsq_backward. A hand-written node like
// masked_autograd.cpp's: the three tensors, the caller's input and parameters, are version-checked
// SavedVariables, freed after backward.
struct LearnableFakeQuantBackward : public torch::autograd::Node {
  SavedVariable x, scale, zero_point;
  int64_t axis = -1, qmin = 0, qmax = 0;
  double grad_factor = 1.0;

  using Node::Node;
  std::string name() const override { return "LearnableFakeQuantBackward"; }
  void release_variables() override {
    x.reset_data();
    scale.reset_data();
    zero_point.reset_data();
  }

  variable_list apply(variable_list&& grads) override {
    variable_list out(3);
    if (!grads[0].defined()) return out;
    auto [dx, ds, dz] =
        lsq_backward(grads[0], x.unpack(), scale.unpack(), zero_point.unpack(), axis, qmin, qmax, grad_factor);
    if (should_compute_output(0)) out[0] = std::move(dx);
    if (should_compute_output(1)) out[1] = std::move(ds);
    if (should_compute_output(2)) out[2] = std::move(dz);
    return out;
  }
};

// observer.py's qparams for one channel: the fused rule; where eps is above that rule's own floor and the scale
// below eps, the range widened about zero until the scale reaches eps (in torch's precisions: the widening
// factor and products in double, the range rounded to float, the final floor in float).
QParams observer_qparams(float lo, float hi, int32_t qmin, int32_t qmax, bool symmetric, double eps) {
  QParams q = choose_qparams(lo, hi, qmin, qmax, symmetric);
  if (!(eps > static_cast<double>(kSmallScale) && q.scale < eps)) return q;
  const double widen = eps / static_cast<double>(q.scale);
  q = choose_qparams(static_cast<float>(std::min(lo, 0.f) * widen), static_cast<float>(std::max(hi, 0.f) * widen),
                     qmin, qmax, symmetric);
  if (!std::isnan(q.scale)) q.scale = std::max(q.scale, static_cast<float>(eps));
  return q;
}

bool plain_float(const at::Tensor& t) { return t.is_cpu() && t.scalar_type() == at::kFloat && t.is_contiguous(); }

// The static phase: the observer's moving-average update (observer.py), then the scale and zero point of
// LearnableFakeQuantize._static_qparams written into the parameters. Returns false, with nothing changed, where
// the op-by-op path must run: an input or buffer of another dtype, device or layout, a first per-channel call
// (which sizes the buffers), or no range observed yet (that path warns).
bool observe(const at::Tensor& x, const LsqModule& m) {
  if (x.scalar_type() != at::kFloat || (m.per_channel && !(m.ch_axis >= 0 && m.ch_axis < x.dim()))) return false;
  const int64_t channels = m.per_channel ? x.size(m.ch_axis) : 1;
  for (const at::Tensor* t : {&m.min_val, &m.max_val, &m.scale, &m.zero_point, &m.obs_eps})
    if (!plain_float(*t)) return false;
  const std::vector<int64_t> running_sizes = m.per_channel ? std::vector<int64_t>{channels} : std::vector<int64_t>{};
  if (!m.min_val.sizes().equals(running_sizes) || !m.max_val.sizes().equals(running_sizes) ||
      m.obs_eps.numel() != 1 || !m.scale.sizes().equals({channels}) || !m.zero_point.sizes().equals({channels}))
    return false;
  at::Tensor cur_min, cur_max;
  {
    const at::NoGradGuard no_grad;  // the observer sees x.detach()
    std::tie(cur_min, cur_max) =
        m.per_channel ? at::aminmax(x.movedim(m.ch_axis, 0).reshape({channels, -1}), 1) : at::aminmax(x);
  }
  const float* cmin = cur_min.const_data_ptr<float>();
  const float* cmax = cur_max.const_data_ptr<float>();
  float* lo = m.min_val.data_ptr<float>();
  float* hi = m.max_val.data_ptr<float>();
  const float c = static_cast<float>(m.averaging_const);
  std::vector<float> new_lo(channels), new_hi(channels);
  bool lo_all_inf = true, hi_all_inf = true;
  for (int64_t i = 0; i < channels; ++i) {
    new_lo[i] = moving_average(lo[i], cmin[i], c);
    new_hi[i] = moving_average(hi[i], cmax[i], c);
    lo_all_inf = lo_all_inf && std::isinf(new_lo[i]);
    hi_all_inf = hi_all_inf && std::isinf(new_hi[i]);
  }
  if (lo_all_inf && hi_all_inf) return false;
  const double eps = *m.obs_eps.const_data_ptr<float>();
  const float tiny = std::numeric_limits<float>::min();
  float* scale = m.scale.data_ptr<float>();
  float* zero_point = m.zero_point.data_ptr<float>();
  for (int64_t i = 0; i < channels; ++i) {
    const float mn = new_lo[i], mx = new_hi[i];
    lo[i] = mn;
    hi[i] = mx;
    // Symmetric: a one-signed range gets the smallest opposite-signed end (the zero point is pinned to 0).
    const float l = m.symmetric && mn >= 0 && mx > 0 ? -tiny : mn;
    const float h = m.symmetric && mx <= 0 && mn < 0 ? tiny : mx;
    const QParams q = observer_qparams(l, h, static_cast<int32_t>(m.obs_qmin), static_cast<int32_t>(m.obs_qmax),
                                       m.symmetric, eps);
    scale[i] = q.scale;
    zero_point[i] = static_cast<float>(q.zero_point);
  }
  return true;
}

}  // namespace

at::Tensor lsq_autograd(const at::Tensor& x, const at::Tensor& scale, const at::Tensor& zero_point, int64_t axis,
                        int64_t qmin, int64_t qmax, double grad_factor) {
  if (!(at::GradMode::is_enabled() && (x.requires_grad() || scale.requires_grad() || zero_point.requires_grad())))
    return lsq_forward(x, scale, zero_point, axis, qmin, qmax);
  at::Tensor y;
  {
    const at::NoGradGuard no_grad;  // the node below is y's only history
    y = lsq_forward(x, scale, zero_point, axis, qmin, qmax);
  }
  auto node =
      c10::make_intrusive<LearnableFakeQuantBackward>(torch::autograd::collect_next_edges(x, scale, zero_point));
  node->x = SavedVariable(x, /*is_output=*/false);
  node->scale = SavedVariable(scale, false);
  node->zero_point = SavedVariable(zero_point, false);
  node->axis = axis;
  node->qmin = qmin;
  node->qmax = qmax;
  node->grad_factor = grad_factor;
  torch::autograd::set_history(y, node);
  return y;
}

std::optional<at::Tensor> lsq_module_forward(const at::Tensor& x, const LsqModule& m) {
  if (!x.is_cpu() || x.numel() == 0 || (m.grad_scaling && m.qmax <= 0)) return std::nullopt;
  if (single_value(m.static_on) != 0) {
    if (!observe(x, m)) return std::nullopt;
  } else {
    m.scale.variable_data().clamp_(single_value(m.eps), std::nullopt);  // scale.data.clamp_(min=eps)
  }
  if (single_value(m.fake_quant_on) == 0) return x;
  if (m.symmetric) m.zero_point.variable_data().zero_();
  // Python's 1.0 / (numel * quant_max) ** 0.5, through the same libm pow.
  const double grad_factor =
      m.grad_scaling ? 1.0 / std::pow(static_cast<double>(x.numel() * m.qmax), 0.5) : 1.0;
  if (m.per_channel) check_axis(x, m.ch_axis);
  return lsq_autograd(x, m.scale, m.zero_point, m.per_channel ? m.ch_axis : -1, m.qmin, m.qmax, grad_factor);
}

}  // namespace fakequant
