// masked_autograd.cpp — the C++ autograd nodes behind with_mask_backward, bn_folded_weight / _bias and conv_bn_folded.
#include "masked_autograd.h"

#include <tuple>
#include <vector>

#include <ATen/ops/sqrt_cpu_dispatch.h>
#include <torch/csrc/autograd/functions/utils.h>

#include "cpu/bn_fold.h"
#include "out_cache.h"

namespace fakequant {
namespace {

using torch::autograd::variable_list;

// grad * mask (mask_grad), written over grad where the node holds grad's only reference and storage: the
// engine hands a node its incoming gradient, and a fresh output per layer costs page faults.
at::Tensor owned_mask_grad(at::Tensor&& grad, const at::Tensor& mask, const std::vector<int64_t>& order, bool relu) {
  const bool owned = grad.use_count() == 1 && grad.storage().use_count() == 1 && grad.is_non_overlapping_and_dense();
  return mask_grad(grad, mask, order, relu, owned);
}

// dx = grad * mask (relu: the fused ReLU's two-plane mask). A hand-written node, not a Function<T>: that one
// demangles its type name and looks its saved data up by string on every backward, which a small layer's
// backward notices. The mask is the op's own tensor, so it needs no SavedVariable version check.
struct MaskedFakeQuantBackward : public torch::autograd::Node {
  at::Tensor mask;
  std::vector<int64_t> order;
  bool relu = false;

  using Node::Node;
  std::string name() const override { return "MaskedFakeQuantBackward"; }

  variable_list apply(variable_list&& grads) override {
    if (!grads[0].defined() || !mask.defined()) return {grads[0]};
    return {owned_mask_grad(std::move(grads[0]), mask, order, relu)};
  }
};

// BN's per-channel terms as one 2 x C float32 tensor: row 0 std = sqrt(running_var + eps) with torch's values,
// row 1 sf, which the forward writes. The add in float here (torch rounds eps to float and adds, exactly this),
// then torch's CPU sqrt kernel in place over the whole tensor (not the correctly rounded sqrt: it differs for
// about one float32 in six in [0.01, 10], see cpu/bn_fold.h; row 1 holds zeros until then): one allocation,
// no dispatcher call.
at::Tensor bn_terms(const at::Tensor& running_var, double eps) {
  const at::Tensor var = running_var.contiguous();
  const int64_t channels = var.numel();
  at::Tensor terms = output_empty({2, channels}, var.options());
  const float e = static_cast<float>(eps);
  const float* v = var.data_ptr<float>();
  float* s = terms.data_ptr<float>();
  for (int64_t c = 0; c < channels; ++c) s[c] = v[c] + e, s[channels + c] = 0.f;
  return at::cpu::sqrt_(terms);
}

// BnFoldParams over bn_terms' std / sf rows for a weight of `row` elements per channel.
BnFoldParams fold_params(const at::Tensor& terms, int64_t row = 0) {
  BnFoldParams p;
  p.channels = terms.size(1);
  p.row = row;
  p.sf = terms.data_ptr<float>() + p.channels;
  p.std_dev = p.sf - p.channels;
  return p;
}

// BN folding's weight (see cpu/bn_fold.h): weight, gamma and running_var float32 on the CPU. A hand-written
// node like MaskedFakeQuantBackward; the weight, which may be the parameter itself, is a SavedVariable
// (version-checked, freed after backward), the rest are the op's own tensors.
struct BnFoldedWeight : public torch::autograd::Node {
  torch::autograd::SavedVariable weight;
  at::Tensor terms, q, mask;  // terms: bn_terms; q: fq(W * sf), kept when divide
  bool divide = false;

  using Node::Node;
  std::string name() const override { return "BnFoldedWeightBackward"; }
  void release_variables() override { weight.reset_data(); }

  variable_list apply(variable_list&& grads) override {
    variable_list out(2);
    if (!grads[0].defined()) return out;
    const at::Tensor w = weight.unpack();
    const at::Tensor g = grads[0].contiguous();
    if (should_compute_output(0)) out[0] = output_like(w);
    if (should_compute_output(1)) out[1] = output_empty({terms.size(1)}, terms.options());
    const BnFoldParams p = params(w, terms);
    bn_fold_backward(p, g.data_ptr<float>(), q.defined() ? q.data_ptr<float>() : nullptr,
                     mask.defined() ? reinterpret_cast<const uint64_t*>(mask.data_ptr<int64_t>()) : nullptr,
                     w.data_ptr<float>(), divide, out[0].defined() ? out[0].data_ptr<float>() : nullptr,
                     out[1].defined() ? out[1].data_ptr<float>() : nullptr);
    return out;
  }

  static BnFoldParams params(const at::Tensor& w, const at::Tensor& terms) {
    return fold_params(terms, w.size(0) ? w.numel() / w.size(0) : 0);
  }

  // (contiguous weight, bn_terms, fq(u), mask, output): the forward with or without a mask.
  static std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> run(
      const at::Tensor& weight, const at::Tensor& gamma, const at::Tensor& running_var, double eps, bool divide,
      const std::function<FqResult(const at::Tensor&, bool)>& fq, bool need_mask) {
    const at::Tensor w = weight.contiguous(), gm = gamma.contiguous();
    const at::Tensor terms = bn_terms(running_var, eps);
    at::Tensor u = output_like(w);
    BnFoldParams p = params(w, terms);
    p.gamma = gm.data_ptr<float>();
    bn_fold_forward(p, w.data_ptr<float>(), u.data_ptr<float>());
    auto [q, mask, order] = fq(u, need_mask);
    at::Tensor out = q;
    if (divide) {
      out = output_like(q);
      bn_fold_unscale(p, q.data_ptr<float>(), out.data_ptr<float>());
    }
    return {w, terms, q, mask, out};
  }
};

// The folded bias (see cpu/bn_fold.h), a node like BnFoldedWeight: running_mean and bias may be the module's
// own tensors (version-checked SavedVariables), bn_terms is the op's.
struct BnFoldedBias : public torch::autograd::Node {
  torch::autograd::SavedVariable mean, bias;
  at::Tensor terms;  // bn_terms

  using Node::Node;
  std::string name() const override { return "BnFoldedBiasBackward"; }
  void release_variables() override {
    mean.reset_data();
    bias.reset_data();
  }

  // Gradients of gamma, beta and bias (the node's edges).
  variable_list apply(variable_list&& grads) override {
    variable_list out(3);
    if (!grads[0].defined()) return out;
    const at::Tensor m = mean.unpack(), b = bias.unpack();
    const at::Tensor g = grads[0].contiguous();
    if (should_compute_output(0)) out[0] = output_like(g);
    if (should_compute_output(1)) out[1] = g;
    if (b.defined() && should_compute_output(2)) out[2] = output_like(g);
    const BnFoldParams p = fold_params(terms);
    bn_folded_bias_backward(p, g.data_ptr<float>(), m.data_ptr<float>(), b.defined() ? b.data_ptr<float>() : nullptr,
                            out[0].defined() ? out[0].data_ptr<float>() : nullptr,
                            out[2].defined() ? out[2].data_ptr<float>() : nullptr);
    return out;
  }

  // (bn_terms, running_mean, bias, folded bias), contiguous.
  static std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> run(
      const at::Tensor& gamma, const at::Tensor& beta, const at::Tensor& running_mean,
      const at::Tensor& running_var, const at::Tensor& bias, double eps) {
    const at::Tensor gm = gamma.contiguous(), be = beta.contiguous(), mean = running_mean.contiguous();
    const at::Tensor b = bias.defined() ? bias.contiguous() : bias;
    const at::Tensor terms = bn_terms(running_var, eps);
    at::Tensor out = output_like(mean);
    BnFoldParams p = fold_params(terms);
    p.gamma = gm.data_ptr<float>();
    bn_folded_bias_forward(p, be.data_ptr<float>(), mean.data_ptr<float>(), b.defined() ? b.data_ptr<float>() : nullptr,
                           out.data_ptr<float>());
    return {terms, mean, b, out};
  }
};

// A QAT ConvBn layer as one node (see conv_bn_folded): the folded weight, the convolution, while BN trains
// the batch norm, and the output fake quant when the caller passes it in. The backward chains the gradients
// those nodes would give in turn: the fake quant's mask (or torch's ReLU backward), torch's
// native_batch_norm_backward, convolution_backward, then cpu/bn_fold.h's (frozen: with the folded bias's).
// One node instead of four saves the engine's per-node work, which a small layer's step notices.
struct ConvBnFolded : public torch::autograd::Node {
  torch::autograd::SavedVariable x, weight, gamma, mean, bias;  // mean, bias: the folded bias's (frozen)
  at::Tensor terms, q, mask, w_conv;                            // w_conv: the weight the convolution ran with
  at::Tensor c, save_mean, save_invstd;                         // BN's input and batch statistics (live)
  at::Tensor act_mask, relu_out;                                // the output fake quant's (ActResult)
  std::vector<int64_t> act_order;
  bool act_relu_mask = false;
  ConvGeometry conv;
  double eps = 0;
  bool live = false, has_bias = false;

  using Node::Node;
  std::string name() const override { return "ConvBnFoldedBackward"; }
  void release_variables() override {
    for (auto* v : {&x, &weight, &gamma, &mean, &bias}) v->reset_data();
    c.reset();
    relu_out.reset();
  }

  // Gradients of x, weight, gamma, beta and bias (the node's edges).
  variable_list apply(variable_list&& grads) override {
    variable_list out(5);
    if (!grads[0].defined()) return out;
    const bool want_w = should_compute_output(1), want_gamma = should_compute_output(2),
               want_beta = should_compute_output(3), want_bias = has_bias && should_compute_output(4);
    at::Tensor g = std::move(grads[0]), dgamma_bn;
    if (relu_out.defined()) {
      g = at::threshold_backward(g, relu_out, 0);
    } else if (act_mask.defined()) {
      g = owned_mask_grad(std::move(g), act_mask, act_order, act_relu_mask);
    }
    if (live) {
      std::tie(g, dgamma_bn, out[3]) = at::native_batch_norm_backward(
          g, c, gamma.unpack(), {}, {}, save_mean, save_invstd, true, eps, {true, want_gamma, want_beta});
    }
    const int64_t channels = terms.size(1);
    const std::optional<at::IntArrayRef> bias_sizes =
        live && !has_bias ? std::nullopt : std::optional<at::IntArrayRef>(at::IntArrayRef(&channels, 1));
    const bool want_b = live ? want_bias : want_gamma || want_beta || want_bias;
    at::Tensor dw_conv, db;
    std::tie(out[0], dw_conv, db) = at::convolution_backward(
        g, x.unpack(), w_conv, bias_sizes, conv.stride, conv.padding, conv.dilation, false, conv.output_padding(),
        conv.groups, {should_compute_output(0), want_w || want_gamma, want_b});
    const at::Tensor w = weight.unpack();
    if (want_w) out[1] = output_like(w);
    if (want_gamma) out[2] = output_empty({channels}, terms.options());
    const BnFoldParams p = BnFoldedWeight::params(w, terms);
    if (want_w || want_gamma) {
      const at::Tensor dw = dw_conv.contiguous();
      bn_fold_backward(p, dw.data_ptr<float>(), live ? q.data_ptr<float>() : nullptr,
                       mask.defined() ? reinterpret_cast<const uint64_t*>(mask.data_ptr<int64_t>()) : nullptr,
                       w.data_ptr<float>(), live, want_w ? out[1].data_ptr<float>() : nullptr,
                       want_gamma ? out[2].data_ptr<float>() : nullptr);
    }
    if (live) {
      if (want_bias) out[4] = db;
      if (want_gamma) out[2] = out[2] + dgamma_bn;
      return out;
    }
    // Frozen: db is the folded bias's gradient.
    const at::Tensor m = mean.unpack(), b = bias.unpack();
    at::Tensor dgamma_b = want_gamma ? output_empty({channels}, terms.options()) : at::Tensor();
    if (want_bias) out[4] = output_like(db);
    bn_folded_bias_backward(p, db.data_ptr<float>(), m.data_ptr<float>(), b.defined() ? b.data_ptr<float>() : nullptr,
                            want_gamma ? dgamma_b.data_ptr<float>() : nullptr,
                            want_bias ? out[4].data_ptr<float>() : nullptr);
    if (want_gamma) out[2] = out[2] + dgamma_b;
    if (want_beta) out[3] = db;
    return out;
  }
};

}  // namespace

at::Tensor bn_folded_bias(const at::Tensor& gamma, const at::Tensor& beta, const at::Tensor& running_mean,
                          const at::Tensor& running_var, const at::Tensor& bias, double eps) {
  const bool grad = gamma.requires_grad() || beta.requires_grad() || (bias.defined() && bias.requires_grad());
  if (!(grad && at::GradMode::is_enabled()))
    return std::get<3>(BnFoldedBias::run(gamma, beta, running_mean, running_var, bias, eps));
  auto node = c10::make_intrusive<BnFoldedBias>(torch::autograd::collect_next_edges(gamma, beta, bias));
  at::Tensor out;
  {
    const at::NoGradGuard no_grad;  // the node is out's only history
    at::Tensor mean, b;
    std::tie(node->terms, mean, b, out) = BnFoldedBias::run(gamma, beta, running_mean, running_var, bias, eps);
    node->mean = torch::autograd::SavedVariable(mean, /*is_output=*/false);
    node->bias = torch::autograd::SavedVariable(b, /*is_output=*/false);
  }
  torch::autograd::set_history(out, node);
  return out;
}

at::Tensor bn_folded_weight(const at::Tensor& weight, const at::Tensor& gamma, const at::Tensor& running_var,
                            double eps, bool divide, const std::function<FqResult(const at::Tensor&, bool)>& fq) {
  if (!((weight.requires_grad() || gamma.requires_grad()) && at::GradMode::is_enabled()))
    return std::get<4>(BnFoldedWeight::run(weight, gamma, running_var, eps, divide, fq, false));
  auto node = c10::make_intrusive<BnFoldedWeight>(torch::autograd::collect_next_edges(weight, gamma));
  at::Tensor out;
  {
    const at::NoGradGuard no_grad;  // the node is out's only history
    at::Tensor w;
    std::tie(w, node->terms, node->q, node->mask, out) =
        BnFoldedWeight::run(weight, gamma, running_var, eps, divide, fq, true);
    node->weight = torch::autograd::SavedVariable(w, /*is_output=*/false);
  }
  if (!divide) node->q.reset();
  node->divide = divide;
  torch::autograd::set_history(out, node);
  return out;
}

at::Tensor conv_bn_folded(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                          const at::Tensor& gamma, const at::Tensor& beta, const at::Tensor& running_mean,
                          const at::Tensor& running_var, double eps, double momentum, bool live,
                          const ConvGeometry& conv, const std::function<FqResult(const at::Tensor&, bool)>& fq,
                          const ActFn* act) {
  const bool grad = at::GradMode::is_enabled() &&
                    (x.requires_grad() || weight.requires_grad() || gamma.requires_grad() || beta.requires_grad() ||
                     (bias.defined() && bias.requires_grad()));
  c10::intrusive_ptr<ConvBnFolded> node;
  if (grad) node = c10::make_intrusive<ConvBnFolded>(torch::autograd::collect_next_edges(x, weight, gamma, beta, bias));
  at::Tensor y;
  {
    const at::NoGradGuard no_grad;  // the node is y's only history
    auto [w, terms, q, mask, w_conv] = BnFoldedWeight::run(weight, gamma, running_var, eps, live, fq, grad);
    at::Tensor c, save_mean, save_invstd, mean, b;
    if (live) {
      c = at::convolution(x, w_conv, bias, conv.stride, conv.padding, conv.dilation, false, conv.output_padding(),
                          conv.groups);
      std::tie(y, save_mean, save_invstd) =
          at::native_batch_norm(c, gamma, beta, running_mean, running_var, true, momentum, eps);
    } else {  // the folded bias from the same terms (BnFoldedBias's forward)
      const at::Tensor gm = gamma.contiguous(), be = beta.contiguous();
      mean = running_mean.contiguous();
      b = bias.defined() ? bias.contiguous() : bias;
      at::Tensor folded_bias = output_like(mean);
      BnFoldParams p = fold_params(terms);
      p.gamma = gm.data_ptr<float>();
      bn_folded_bias_forward(p, be.data_ptr<float>(), mean.data_ptr<float>(), b.defined() ? b.data_ptr<float>() : nullptr,
                             folded_bias.data_ptr<float>());
      y = at::convolution(x, w_conv, folded_bias, conv.stride, conv.padding, conv.dilation, false,
                          conv.output_padding(), conv.groups);
    }
    ActResult a;
    if (act) {
      a = (*act)(y, grad);
      y = a.y;
    }
    if (node) {
      using torch::autograd::SavedVariable;
      node->act_mask = a.mask;
      node->act_order = std::move(a.order);
      node->act_relu_mask = a.relu_mask;
      node->relu_out = a.relu_out;
      node->x = SavedVariable(x, false);
      node->weight = SavedVariable(w, false);
      if (live) node->gamma = SavedVariable(gamma, false);
      node->mean = SavedVariable(mean, false);
      node->bias = SavedVariable(b, false);
      node->terms = terms;
      if (live) node->q = q;
      node->mask = mask;
      node->w_conv = w_conv;
      node->c = c;
      node->save_mean = save_mean;
      node->save_invstd = save_invstd;
      node->conv = conv;
      node->eps = eps;
      node->live = live;
      node->has_bias = bias.defined();
    }
  }
  if (node) torch::autograd::set_history(y, node);
  return y;
}

at::Tensor with_mask_backward(const at::Tensor& x, const std::function<FqResult(bool)>& fq, bool relu) {
  if (!(x.requires_grad() && at::GradMode::is_enabled())) return std::get<0>(fq(false));
  FqResult r;
  {
    const at::NoGradGuard no_grad;  // the node below is y's only history
    r = fq(true);
  }
  auto node = c10::make_intrusive<MaskedFakeQuantBackward>(torch::autograd::collect_next_edges(x));
  node->mask = std::move(std::get<1>(r));
  node->order = std::move(std::get<2>(r));
  node->relu = relu;
  at::Tensor& y = std::get<0>(r);
  torch::autograd::set_history(y, node);
  return y;
}

}  // namespace fakequant
