// masked_autograd.cpp — the C++ autograd node behind with_mask_backward.
#include "masked_autograd.h"

#include <vector>

namespace fakequant {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct MaskedFakeQuant : public torch::autograd::Function<MaskedFakeQuant> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const std::function<FqResult(bool)>* fq,
                            bool select) {
    auto [y, mask, order] = (*fq)(true);
    ctx->saved_data["mask"] = mask;  // internal: no version check needed
    ctx->saved_data["order"] = order;
    ctx->saved_data["select"] = select;
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const at::Tensor& grad = grads[0];
    const at::Tensor mask = ctx->saved_data["mask"].toTensor();
    at::Tensor dx = grad;
    if (grad.defined() && mask.defined()) {
      dx = mask_grad(grad, mask, ctx->saved_data["order"].toIntVector(), ctx->saved_data["select"].toBool());
    }
    return {dx, at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor with_mask_backward(const at::Tensor& x, const std::function<FqResult(bool)>& fq, bool select) {
  if (!(x.requires_grad() && at::GradMode::is_enabled())) return std::get<0>(fq(false));
  return MaskedFakeQuant::apply(x, &fq, select);
}

}  // namespace fakequant
