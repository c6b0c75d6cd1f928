// masked_autograd.h — the CPU fake-quant ops, BN folding and a QAT ConvBn layer as C++ autograd nodes: the
// forward kernel writes the one-bit mask, the node's backward uses it (no Python autograd.Function on the hot path).
#pragma once

#include <torch/extension.h>

#include <functional>
#include <vector>

#include "bind_fake_quant.h"

namespace fakequant {

// Runs fq(need_mask) and returns its output. When x requires a gradient (grad mode on) the output's
// grad_fn is dx = grad * mask (relu: a fused ReLU's two-plane mask, see mask_grad); an undefined mask
// passes grad through unchanged.
at::Tensor with_mask_backward(const at::Tensor& x, const std::function<FqResult(bool)>& fq, bool relu = false);

// BN folding's weight (the QAT ConvBn / LinearBn modules): fq(W * sf), divided by sf again when divide
// (BN still normalises with batch statistics), sf = gamma / sqrt(running_var + eps) per output channel
// (dim 0): one autograd node with the gradients of W and gamma (cpu/bn_fold.h). fq(u, need_mask)
// fake-quantizes u, which is contiguous, and must return an output of u's layout. The three tensors are
// float32 CPU tensors (the caller checks).
at::Tensor bn_folded_weight(const at::Tensor& weight, const at::Tensor& gamma, const at::Tensor& running_var,
                            double eps, bool divide, const std::function<FqResult(const at::Tensor&, bool)>& fq);

// The folded bias once BN uses running statistics: beta - running_mean * sf (+ bias * sf when bias is
// defined), sf = gamma / sqrt(running_var + eps): one autograd node with the gradients of gamma, beta and
// bias (cpu/bn_fold.h). All float32 CPU tensors of one element per channel (the caller checks).
at::Tensor bn_folded_bias(const at::Tensor& gamma, const at::Tensor& beta, const at::Tensor& running_mean,
                          const at::Tensor& running_var, const at::Tensor& bias, double eps);

// A convolution's geometry as at::convolution takes it (not transposed).
struct ConvGeometry {
  std::vector<int64_t> stride, padding, dilation;
  int64_t groups = 1;
  std::vector<int64_t> output_padding() const { return std::vector<int64_t>(stride.size(), 0); }
};

// The output fake quant a ConvBn node may take in: y = fq(z) (relu: of relu(z)) with its mask for mask_grad
// (relu_mask: the two-plane mask of a fused ReLU), or relu_out = relu(z) for torch's ReLU backward where the
// ReLU ran outside the fake quant (its fake quant off: y is then a copy). z is the node's own intermediate:
// y may overwrite it.
struct ActResult {
  at::Tensor y, mask;
  std::vector<int64_t> order;
  bool relu_mask = false;
  at::Tensor relu_out;
};
using ActFn = std::function<ActResult(const at::Tensor& z, bool need_mask)>;

// A QAT ConvBn layer (torch.ao's ConvBn*d forward) as one autograd node; float32 CPU tensors, the caller checks.
// Live (BN trains): native_batch_norm(conv(x, w, bias), gamma, beta, running stats, training, momentum, eps)
// with w = bn_folded_weight(divide), the running statistics updated in place. Frozen: conv(x, w, b) with
// w = bn_folded_weight(no divide), b = bn_folded_bias. act, when not null, is the output fake quant, taken
// into the node. Gradients of x, weight, gamma, beta and bias: the values of the nodes it replaces.
at::Tensor conv_bn_folded(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                          const at::Tensor& gamma, const at::Tensor& beta, const at::Tensor& running_mean,
                          const at::Tensor& running_var, double eps, double momentum, bool live,
                          const ConvGeometry& conv, const std::function<FqResult(const at::Tensor&, bool)>& fq,
                          const ActFn* act);

}  // namespace fakequant
