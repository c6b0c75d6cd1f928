// masked_autograd.cpp — the C++ autograd nodes behind with_mask_backward and bn_folded_weight.
#include "masked_autograd.h"

#include <numeric>
#include <vector>

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

// w = fq(W * sf) [/ sf]. With g = dL/dw and m the mask of fq at u = W * sf:
//   dL/du = m (g [/ sf]),  dL/dW = dL/du * sf,
//   dL/dsf = sum(dL/du * W) [- sum(g * fq(u)) / sf^2]  (over each output channel),  dL/dgamma = dL/dsf / std.
struct BnFoldedWeight : public torch::autograd::Function<BnFoldedWeight> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& weight, const at::Tensor& gamma,
                            const at::Tensor& running_var, double eps, bool divide,
                            const std::function<FqResult(const at::Tensor&, bool)>* fq) {
    const at::Tensor std_dev = at::sqrt(running_var + eps);
    const at::Tensor sf = gamma / std_dev;
    const at::Tensor sf_col = channel_column(sf, weight);
    auto [q, mask, order] = (*fq)(weight * sf_col, true);
    ctx->save_for_backward({weight, sf, std_dev, divide ? q : at::Tensor()});
    ctx->saved_data["mask"] = mask;
    ctx->saved_data["order"] = order;
    ctx->saved_data["divide"] = divide;
    return divide ? q / sf_col : q;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    const at::Tensor &weight = saved[0], &sf = saved[1], &std_dev = saved[2], &q = saved[3];
    const at::Tensor& g = grads[0];
    variable_list out(6);
    if (!g.defined()) return out;
    const bool divide = ctx->saved_data["divide"].toBool();
    const at::Tensor sf_col = channel_column(sf, weight);
    at::Tensor du = divide ? g / sf_col : g;
    const at::Tensor mask = ctx->saved_data["mask"].toTensor();
    if (mask.defined()) du = mask_grad(du, mask, ctx->saved_data["order"].toIntVector());
    if (ctx->needs_input_grad(0)) out[0] = du * sf_col;
    if (ctx->needs_input_grad(1)) {
      std::vector<int64_t> dims(weight.dim() - 1);
      std::iota(dims.begin(), dims.end(), 1);
      at::Tensor dsf = (du * weight).sum(dims);
      if (divide) dsf = dsf - (g * q).sum(dims) / (sf * sf);
      out[1] = dsf / std_dev;
    }
    return out;
  }

  // sf as a column that broadcasts over w's dims after the first.
  static at::Tensor channel_column(const at::Tensor& sf, const at::Tensor& w) {
    std::vector<int64_t> shape(w.dim(), 1);
    shape[0] = -1;
    return sf.reshape(shape);
  }
};

}  // namespace

at::Tensor bn_folded_weight(const at::Tensor& weight, const at::Tensor& gamma, const at::Tensor& running_var,
                            double eps, bool divide, const std::function<FqResult(const at::Tensor&, bool)>& fq) {
  if ((weight.requires_grad() || gamma.requires_grad()) && at::GradMode::is_enabled())
    return BnFoldedWeight::apply(weight, gamma, running_var, eps, divide, &fq);
  const at::Tensor sf_col = BnFoldedWeight::channel_column(gamma / at::sqrt(running_var + eps), weight);
  const at::Tensor q = std::get<0>(fq(weight * sf_col, false));
  return divide ? q / sf_col : q;
}

at::Tensor with_mask_backward(const at::Tensor& x, const std::function<FqResult(bool)>& fq, bool relu) {
  if (!(x.requires_grad() && at::GradMode::is_enabled())) return std::get<0>(fq(false));
  return MaskedFakeQuant::apply(x, &fq, relu);
}

}  // namespace fakequant
