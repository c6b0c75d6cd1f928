// lsq_autograd.h — the CPU LSQ op as a C++ autograd node, its backward state, LearnableFakeQuantize's forward.
#pragma once

#include <torch/extension.h>
#include <torch/csrc/autograd/saved_variable.h>

#include <memory>
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

// LSQ's backward state: the input it quantized, scale and zero_point (version-checked SavedVariables, freed by
// release) and lsq_backward's other arguments. LearnableFakeQuantBackward's, and the ConvBn node's for an LSQ weight.
struct LsqSaved {
  torch::autograd::SavedVariable x, scale, zero_point;
  int64_t axis = -1, qmin = 0, qmax = 0;
  double grad_factor = 1.0;

  void save(const at::Tensor& input, const at::Tensor& s, const at::Tensor& z, int64_t ax, int64_t lo, int64_t hi,
            double factor);
  // lsq_backward(dy, ...): (dx, dscale, dzero_point).
  std::tuple<at::Tensor, at::Tensor, at::Tensor> backward(const at::Tensor& dy) const;
  void release();
};

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

// The LSQ op LearnableFakeQuantize.forward runs: quantize false where its fake quant is off (the output is x).
struct LsqCall {
  bool quantize = false;
  int64_t axis = -1;
  double grad_factor = 1.0;
};

// LearnableFakeQuantize.forward(x) up to the LSQ op: the observer update and its qparams, or the scale's clamp,
// then the zero point pinned to 0 when symmetric, buffers and parameters updated in place. nullopt, with
// nothing changed, where the module's op-by-op path must run (see lsq_autograd.cpp's observe).
std::optional<LsqCall> lsq_module_prepare(const at::Tensor& x, const LsqModule& m);

// lsq_module_prepare, then the LSQ op's forward with no node, for a fake quant inside another node: an undefined
// tensor where lsq_module_prepare gives nullopt, x itself where fake quant is off; where it quantizes and saved is
// not null, *saved becomes the LSQ backward's state.
at::Tensor lsq_module_fq(const at::Tensor& x, const LsqModule& m, std::shared_ptr<LsqSaved>* saved);

// LearnableFakeQuantize.forward(x), value for value, buffers and parameters updated in place; nullopt, with
// nothing changed, where the module's op-by-op path must run (see lsq_autograd.cpp's observe).
std::optional<at::Tensor> lsq_module_forward(const at::Tensor& x, const LsqModule& m);

}  // namespace fakequant
