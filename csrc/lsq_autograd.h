// lsq_autograd.h — the CPU LSQ op as a C++ autograd node, and LearnableFakeQuantize's forward in one call.
#pragma once

#include <torch/extension.h>

#include <optional>
#include <tuple>

namespace fakequant {

// bind_lsq.cpp's runners (axis < 0: per tensor): torch's LSQ forward, and its backward (dx, dscale, dzero_point).
at::Tensor lsq_forward(const at::Tensor& x, const at::Tensor& scale, const at::Tensor& zero_point, int64_t axis,
                       int64_t qmin, int64_t qmax);
std::tuple<at::Tensor, at::Tensor, at::Tensor> lsq_backward(const at::Tensor& dy, const at::Tensor& input,
                                                            const at::Tensor& scale, const at::Tensor& zero_point,
                                                            int64_t axis, int64_t qmin, int64_t qmax,
                                                            double grad_factor);

// lsq_forward with, when grad mode is on and a tensor requires a gradient, one autograd node whose backward is
// lsq_backward (gradients of input, scale and zero_point).
at::Tensor lsq_autograd(const at::Tensor& x, const at::Tensor& scale, const at::Tensor& zero_point, int64_t axis,
                        int64_t qmin, int64_t qmax, double grad_factor);

// A LearnableFakeQuantize with a moving-average min / max observer: its flags, parameters, the observer's
// buffers and arguments (fake_quantize.py LearnableFakeQuantize._node_args).
struct LsqModule {
  at::Tensor static_on, fake_quant_on, eps, scale, zero_point, min_val, max_val, obs_eps;
  double averaging_const;
  int64_t obs_qmin, obs_qmax, qmin, qmax, ch_axis;
  bool per_channel, symmetric, grad_scaling;
};

// LearnableFakeQuantize.forward(x), value for value, buffers and parameters updated in place; nullopt, with
// nothing changed, where the module's op-by-op path must run (see lsq_autograd.cpp's observe).
std::optional<at::Tensor> lsq_module_forward(const at::Tensor& x, const LsqModule& m);

}  // namespace fakequant
