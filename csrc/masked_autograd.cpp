// masked_autograd.cpp — the C++ autograd nodes behind with_mask_backward and bn_folded_weight.
#include "masked_autograd.h"

#include <optional>
#include <tuple>
#include <vector>

#include "cpu/bn_fold.h"

namespace fakequant {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct MaskedFakeQuant : public torch::autograd::Function<MaskedFakeQuant> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const std::function<FqResult(bool)>* fq,
                            bool relu) {
    auto [y, mask, order] = (*fq)(true);
    ctx->saved_data["mask"] = mask;  // internal: no version check needed
    ctx->saved_data["order"] = order;
    ctx->saved_data["relu"] = relu;
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const at::Tensor& grad = grads[0];
    const at::Tensor mask = ctx->saved_data["mask"].toTensor();
    at::Tensor dx = grad;
    if (grad.defined() && mask.defined()) {
      dx = mask_grad(grad, mask, ctx->saved_data["order"].toIntVector(), ctx->saved_data["relu"].toBool());
    }
    return {dx, at::Tensor(), at::Tensor()};
  }
};

// BnFoldParams over per-channel sf / std (float32, contiguous) for a weight of `row` elements per channel.
BnFoldParams fold_params(const at::Tensor& sf, const at::Tensor& std_dev, int64_t row = 0) {
  BnFoldParams p;
  p.channels = sf.numel();
  p.row = row;
  p.sf = sf.data_ptr<float>();
  p.std_dev = std_dev.data_ptr<float>();
  return p;
}

// BN folding's weight (see cpu/bn_fold.h): weight, gamma and running_var float32 on the CPU.
struct BnFoldedWeight : public torch::autograd::Function<BnFoldedWeight> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& weight, const at::Tensor& gamma,
                            const at::Tensor& running_var, double eps, bool divide,
                            const std::function<FqResult(const at::Tensor&, bool)>* fq) {
    auto [w, std_dev, sf, q, mask, out] = run(weight, gamma, running_var, eps, divide, *fq, true);
    ctx->save_for_backward({w, std_dev, sf, divide ? q : at::Tensor()});
    ctx->saved_data["mask"] = mask;
    ctx->saved_data["divide"] = divide;
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    variable_list out(6);
    if (!grads[0].defined()) return out;
    const variable_list saved = ctx->get_saved_variables();
    const at::Tensor &w = saved[0], &std_dev = saved[1], &sf = saved[2], &q = saved[3];
    const at::Tensor mask = ctx->saved_data["mask"].toTensor();
    const at::Tensor g = grads[0].contiguous();
    if (ctx->needs_input_grad(0)) out[0] = at::empty_like(w);
    if (ctx->needs_input_grad(1)) out[1] = at::empty_like(sf);
    const BnFoldParams p = params(w, sf, std_dev);
    bn_fold_backward(p, g.data_ptr<float>(), q.defined() ? q.data_ptr<float>() : nullptr,
                     mask.defined() ? reinterpret_cast<const uint64_t*>(mask.data_ptr<int64_t>()) : nullptr,
                     w.data_ptr<float>(), ctx->saved_data["divide"].toBool(),
                     out[0].defined() ? out[0].data_ptr<float>() : nullptr,
                     out[1].defined() ? out[1].data_ptr<float>() : nullptr);
    return out;
  }

  static BnFoldParams params(const at::Tensor& w, const at::Tensor& sf, const at::Tensor& std_dev) {
    return fold_params(sf, std_dev, w.size(0) ? w.numel() / w.size(0) : 0);
  }

  // (contiguous weight, std, sf, fq(u), mask, output): the forward with or without a mask.
  static std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> run(
      const at::Tensor& weight, const at::Tensor& gamma, const at::Tensor& running_var, double eps, bool divide,
      const std::function<FqResult(const at::Tensor&, bool)>& fq, bool need_mask) {
    const at::Tensor w = weight.contiguous(), gm = gamma.contiguous();
    const at::Tensor std_dev = at::sqrt(running_var + eps).contiguous();
    at::Tensor sf = at::empty_like(std_dev), u = at::empty_like(w);
    BnFoldParams p = params(w, sf, std_dev);
    p.gamma = gm.data_ptr<float>();
    bn_fold_forward(p, w.data_ptr<float>(), u.data_ptr<float>());
    auto [q, mask, order] = fq(u, need_mask);
    at::Tensor out = q;
    if (divide) {
      out = at::empty_like(q);
      bn_fold_unscale(p, q.data_ptr<float>(), out.data_ptr<float>());
    }
    return {w, std_dev, sf, q, mask, out};
  }
};

struct BnFoldedBias : public torch::autograd::Function<BnFoldedBias> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& gamma, const at::Tensor& beta,
                            const at::Tensor& running_mean, const at::Tensor& running_var,
                            const std::optional<at::Tensor>& bias, double eps) {
    auto [std_dev, sf, mean, b, out] = run(gamma, beta, running_mean, running_var, bias.value_or(at::Tensor()), eps);
    ctx->save_for_backward({std_dev, sf, mean, b});
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    variable_list out(6);
    if (!grads[0].defined()) return out;
    const variable_list saved = ctx->get_saved_variables();
    const at::Tensor &std_dev = saved[0], &sf = saved[1], &mean = saved[2], &bias = saved[3];
    const at::Tensor g = grads[0].contiguous();
    if (ctx->needs_input_grad(0)) out[0] = at::empty_like(sf);
    if (ctx->needs_input_grad(1)) out[1] = g;
    if (bias.defined() && ctx->needs_input_grad(4)) out[4] = at::empty_like(sf);
    const BnFoldParams p = fold_params(sf, std_dev);
    bn_folded_bias_backward(p, g.data_ptr<float>(), mean.data_ptr<float>(),
                            bias.defined() ? bias.data_ptr<float>() : nullptr,
                            out[0].defined() ? out[0].data_ptr<float>() : nullptr,
                            out[4].defined() ? out[4].data_ptr<float>() : nullptr);
    return out;
  }

  // (std, sf, running_mean, bias, folded bias), contiguous.
  static std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> run(
      const at::Tensor& gamma, const at::Tensor& beta, const at::Tensor& running_mean,
      const at::Tensor& running_var, const at::Tensor& bias, double eps) {
    const at::Tensor gm = gamma.contiguous(), be = beta.contiguous(), mean = running_mean.contiguous();
    const at::Tensor b = bias.defined() ? bias.contiguous() : bias;
    const at::Tensor std_dev = at::sqrt(running_var + eps).contiguous();  // torch's sqrt (see cpu/bn_fold.h)
    at::Tensor sf = at::empty_like(std_dev), out = at::empty_like(std_dev);
    BnFoldParams p = fold_params(sf, std_dev);
    p.gamma = gm.data_ptr<float>();
    bn_folded_bias_forward(p, be.data_ptr<float>(), mean.data_ptr<float>(), b.defined() ? b.data_ptr<float>() : nullptr,
                           out.data_ptr<float>());
    return {std_dev, sf, mean, b, out};
  }
};

}  // namespace

at::Tensor bn_folded_bias(const at::Tensor& gamma, const at::Tensor& beta, const at::Tensor& running_mean,
                          const at::Tensor& running_var, const at::Tensor& bias, double eps) {
  const bool grad = gamma.requires_grad() || beta.requires_grad() || (bias.defined() && bias.requires_grad());
  if (grad && at::GradMode::is_enabled()) {  // an optional, not an undefined tensor, for autograd's input list
    return BnFoldedBias::apply(gamma, beta, running_mean, running_var,
                               bias.defined() ? std::optional<at::Tensor>(bias) : std::nullopt, eps);
  }
  return std::get<4>(BnFoldedBias::run(gamma, beta, running_mean, running_var, bias, eps));
}

at::Tensor bn_folded_weight(const at::Tensor& weight, const at::Tensor& gamma, const at::Tensor& running_var,
                            double eps, bool divide, const std::function<FqResult(const at::Tensor&, bool)>& fq) {
  if ((weight.requires_grad() || gamma.requires_grad()) && at::GradMode::is_enabled())
    return BnFoldedWeight::apply(weight, gamma, running_var, eps, divide, &fq);
  return std::get<5>(BnFoldedWeight::run(weight, gamma, running_var, eps, divide, fq, false));
}

at::Tensor with_mask_backward(const at::Tensor& x, const std::function<FqResult(bool)>& fq, bool relu) {
  if (!(x.requires_grad() && at::GradMode::is_enabled())) return std::get<0>(fq(false));
  return MaskedFakeQuant::apply(x, &fq, relu);
}

}  // namespace fakequant
