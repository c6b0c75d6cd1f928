// bind_cuda.cpp — the _C.cuda_* fake-quant, LSQ and fused-observer functions on the current stream under a device guard.
#include <c10/cuda/CUDAGuard.h>

#include <algorithm>
#include <limits>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "../bind.h"
#include "../checks.h"
#include "../layout.h"
#include "bind_cuda.h"
#include "launchers.h"

namespace fakequant {
namespace {

using FqResult = std::tuple<at::Tensor, at::Tensor, std::vector<int64_t>>;

// The LSQ and fused-observer kernels take float32, float16 and bfloat16 inputs.
DType check_input_not_f64(const at::Tensor& x) {
  const DType t = check_float_input(x, "input");
  if (t == DType::F64) type_error("input must be float32, float16 or bfloat16 for this CUDA op, got float64");
  return t;
}

// Runs launch_fake_quant over x; p carries the qparams and rule, the rest is filled in here.
FqResult run_fake_quant(const at::Tensor& x, CudaFakeQuantParams p, int64_t axis, int64_t qmin, int64_t qmax,
                        bool need_mask) {
  p.fq.dtype = check_float_input(x, "input");
  FakeQuantOutputs o = fake_quant_outputs(x, axis, need_mask, &p.fq.it, &p.fq.ch_dim);
  p.fq.x = x.data_ptr();
  p.fq.y = o.y.data_ptr();
  p.fq.mask = need_mask ? reinterpret_cast<uint64_t*>(ptr<int64_t>(o.mask)) : nullptr;
  p.fq.quant_min = static_cast<float>(qmin);
  p.fq.quant_max = static_cast<float>(qmax);
  check_launch(launch_fake_quant(p, stream()), "fake quant");
  return {o.y, o.mask, o.order};
}

FqResult per_tensor(const at::Tensor& x, double scale, int64_t zero_point, int64_t qmin, int64_t qmax,
                    bool need_mask) {
  check_quant_range(qmin, qmax);
  check_zero_point_in_range(zero_point, qmin, qmax, "zero_point");
  check_cuda(x, "input");
  const c10::cuda::CUDAGuard guard(x.device());
  CudaFakeQuantParams p;
  p.scale_value = static_cast<float>(scale);
  p.zero_point_value = static_cast<float>(zero_point);
  return run_fake_quant(x, p, -1, qmin, qmax, need_mask);
}

// Tensor qparams read on the device: scale as float, zero point truncated to an integer.
FqResult per_tensor_tensor_qparams(const at::Tensor& x, const at::Tensor& scale, const at::Tensor& zero_point,
                                   int64_t qmin, int64_t qmax, bool need_mask) {
  check_quant_range(qmin, qmax);
  check_same_device({{"input", &x}, {"scale", &scale}, {"zero_point", &zero_point}});
  check_cuda(x, "input");
  check_single(scale, "scale");
  check_single(zero_point, "zero_point");
  const c10::cuda::CUDAGuard guard(x.device());
  const at::Tensor s = scale.reshape({1}).to(at::kFloat);
  const at::Tensor z = zero_point.reshape({1}).to(at::kLong).to(at::kFloat);
  CudaFakeQuantParams p;
  p.fq.scale = ptr<float>(s);
  p.fq.zero_point = ptr<float>(z);
  return run_fake_quant(x, p, -1, qmin, qmax, need_mask);
}

FqResult per_channel(const at::Tensor& x, const at::Tensor& scale, const at::Tensor& zero_point, int64_t axis,
                     int64_t qmin, int64_t qmax, bool need_mask) {
  check_quant_range(qmin, qmax);
  check_per_channel_qparams(x, scale, zero_point, axis, /*float_zp_ok=*/true);
  check_cuda(x, "input");
  const c10::cuda::CUDAGuard guard(x.device());
  const bool int_zp = zero_point.scalar_type() == at::kInt;
  // torch checks the range too (one synchronisation); not while a CUDA graph is being captured, where
  // a synchronisation is not allowed (the kernel then clamps as it always does).
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing(stream(), &capture) != cudaSuccess) capture = cudaStreamCaptureStatusNone;
  if (int_zp && zero_point.numel() > 0 && capture == cudaStreamCaptureStatusNone) {
    const auto [lo, hi] = at::aminmax(zero_point);
    check_zero_point_in_range(lo.item<int64_t>(), qmin, qmax, "zero_point");
    check_zero_point_in_range(hi.item<int64_t>(), qmin, qmax, "zero_point");
  }
  const at::Tensor s = scale.to(at::kFloat).contiguous(), z = zero_point.to(at::kFloat).contiguous();
  CudaFakeQuantParams p;
  p.fq.scale = ptr<float>(s);
  p.fq.zero_point = ptr<float>(z);
  p.fq.zp_mode = int_zp ? ZeroPointMode::RoundThenAdd : ZeroPointMode::AddThenRound;
  p.fq.int64_cast = true;
  return run_fake_quant(x, p, axis, qmin, qmax, need_mask);
}

at::Tensor mask_grad(const at::Tensor& dy, const at::Tensor& mask, const std::vector<int64_t>& order) {
  check_same_device({{"grad", &dy}, {"mask", &mask}});
  check_cuda(dy, "grad");
  check_mask_covers(mask, dy.numel());
  const c10::cuda::CUDAGuard guard(dy.device());
  MaskGradParams p;
  p.dtype = check_float_input(dy, "grad");
  at::Tensor dx = at::empty_like(dy, at::MemoryFormat::Preserve);
  p.it = make_strided(order, dy, dx);
  p.dy = dy.data_ptr();
  p.dx = dx.data_ptr();
  p.mask = reinterpret_cast<const uint64_t*>(ptr<int64_t>(mask));
  check_launch(launch_mask_grad(p, stream()), "mask grad");
  return dx;
}

// ---- learnable (LSQ) ----

// The argument checks of the four LSQ entry points (axis < 0: per tensor).
void check_lsq_args(const at::Tensor& x, const at::Tensor& scale, const at::Tensor& zero_point, int64_t axis,
                    int64_t qmin, int64_t qmax) {
  check_quant_range(qmin, qmax);
  if (axis < 0) {
    check_same_device({{"input", &x}, {"scale", &scale}, {"zero_point", &zero_point}});
    check_cuda(x, "input");
    check_single(scale, "scale");
    check_single(zero_point, "zero_point");
  } else {
    check_per_channel_qparams(x, scale, zero_point, axis, /*float_zp_ok=*/true);
    check_cuda(x, "input");
  }
  check_dtype(scale, "scale", {at::kFloat});
  check_dtype(zero_point, "zero_point", {at::kFloat});
}

// Forward: torch's learnable op is the plain fake quant with zero_point rounded and clamped.
at::Tensor lsq_forward(const at::Tensor& x, const at::Tensor& scale, const at::Tensor& zero_point, int64_t axis,
                       int64_t qmin, int64_t qmax) {
  check_input_not_f64(x);
  const c10::cuda::CUDAGuard guard(x.device());
  const at::Tensor s = scale.contiguous(), zp = zero_point.contiguous();
  at::Tensor zr = at::empty_like(zp);
  check_launch(launch_lsq_round_zero_point(ptr<float>(zp), ptr<float>(zr), zp.numel(), static_cast<float>(qmin),
                                           static_cast<float>(qmax), stream()),
               "learnable zero point");
  CudaFakeQuantParams p;
  p.fq.scale = ptr<float>(s);
  p.fq.zero_point = ptr<float>(zr);
  p.fq.int64_cast = axis >= 0;  // per channel goes through torch's per-channel op
  return std::get<0>(run_fake_quant(x, p, axis, qmin, qmax, false));
}

at::Tensor lsq_per_tensor(const at::Tensor& x, const at::Tensor& scale, const at::Tensor& zero_point, int64_t qmin,
                          int64_t qmax) {
  check_lsq_args(x, scale, zero_point, -1, qmin, qmax);
  return lsq_forward(x, scale, zero_point, -1, qmin, qmax);
}

at::Tensor lsq_per_channel(const at::Tensor& x, const at::Tensor& scale, const at::Tensor& zero_point, int64_t axis,
                           int64_t qmin, int64_t qmax) {
  check_lsq_args(x, scale, zero_point, axis, qmin, qmax);
  return lsq_forward(x, scale, zero_point, axis, qmin, qmax);
}

// Backward: (dx, dscale, dzero_point); axis < 0 for per tensor (gradients of shape [1]).
std::tuple<at::Tensor, at::Tensor, at::Tensor> lsq_backward(const at::Tensor& dy, const at::Tensor& x,
                                                            const at::Tensor& scale, const at::Tensor& zero_point,
                                                            int64_t axis, int64_t qmin, int64_t qmax,
                                                            double grad_factor) {
  check_same_device({{"input", &x}, {"grad", &dy}});
  check_quant_range_has_zero(qmin, qmax);
  check_dtype(dy, "grad", {x.scalar_type()});
  if (!dy.sizes().equals(x.sizes())) value_error("grad must have the shape of input");
  CudaLsqGradParams p;
  p.dtype = check_input_not_f64(x);
  const c10::cuda::CUDAGuard guard(x.device());
  // One set of strides for x and dy (dx gets them too).
  const at::Tensor xs = x.is_non_overlapping_and_dense() ? x : x.contiguous();
  const at::Tensor dys = dy.strides().equals(xs.strides()) ? dy : at::empty_like(xs).copy_(dy);
  at::Tensor dx = at::empty_like(xs);
  // Per channel, the channel dim goes first: channel c owns one contiguous range of element numbers.
  std::vector<int64_t> order = walk_order(xs, axis);
  if (axis >= 0) std::stable_partition(order.begin(), order.end(), [&](int64_t d) { return d == axis; });
  p.it = make_strided(order, xs, dx);
  p.channels = axis >= 0 ? x.size(axis) : 1;
  const at::Tensor s = scale.contiguous(), zp = zero_point.contiguous();
  at::Tensor dscale = at::empty({p.channels}, s.options()), dzp = at::empty({p.channels}, zp.options());
  at::Tensor ws = at::empty({lsq_workspace_floats(p.it, p.channels)}, s.options());
  p.x = xs.data_ptr();
  p.dy = dys.data_ptr();
  p.dx = dx.data_ptr();
  p.scale = ptr<float>(s);
  p.zero_point = ptr<float>(zp);
  p.per_tensor = axis < 0;
  p.quant_min = static_cast<float>(qmin);
  p.quant_max = static_cast<float>(qmax);
  p.grad_factor = static_cast<float>(grad_factor);
  p.workspace = ptr<float>(ws);
  p.dscale = ptr<float>(dscale);
  p.dzero_point = ptr<float>(dzp);
  check_launch(launch_lsq_backward(p, stream()), "learnable fake quant backward");
  return {dx, dscale, dzp};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> lsq_per_tensor_backward(const at::Tensor& dy, const at::Tensor& x,
                                                                       const at::Tensor& scale,
                                                                       const at::Tensor& zero_point, int64_t qmin,
                                                                       int64_t qmax, double grad_factor) {
  check_lsq_args(x, scale, zero_point, -1, qmin, qmax);
  return lsq_backward(dy, x, scale, zero_point, -1, qmin, qmax, grad_factor);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> lsq_per_channel_backward(const at::Tensor& dy, const at::Tensor& x,
                                                                        const at::Tensor& scale,
                                                                        const at::Tensor& zero_point, int64_t axis,
                                                                        int64_t qmin, int64_t qmax,
                                                                        double grad_factor) {
  check_lsq_args(x, scale, zero_point, axis, qmin, qmax);
  return lsq_backward(dy, x, scale, zero_point, axis, qmin, qmax, grad_factor);
}

// ---- fused moving-average observer + fake quant ----

FqResult fused_obs_fake_quant(const at::Tensor& x, const at::Tensor& observer_on, const at::Tensor& fake_quant_on,
                              at::Tensor& running_min, at::Tensor& running_max, at::Tensor& scale,
                              at::Tensor& zero_point, double averaging_const, int64_t qmin, int64_t qmax,
                              int64_t ch_axis, bool per_row_fake_quant, bool symmetric_quant, bool need_mask) {
  check_quant_range(qmin, qmax);
  check_averaging_const(averaging_const);
  check_same_device({{"input", &x},
                     {"observer_on", &observer_on},
                     {"fake_quant_on", &fake_quant_on},
                     {"running_min", &running_min},
                     {"running_max", &running_max},
                     {"scale", &scale},
                     {"zero_point", &zero_point}});
  check_cuda(x, "input");
  CudaFusedObsParams o;
  o.dtype = check_input_not_f64(x);
  if (x.numel() == 0) value_error("input must not be empty");
  check_single(observer_on, "observer_on");
  check_single(fake_quant_on, "fake_quant_on");
  check_dtype(running_min, "running_min", {at::kFloat});
  check_dtype(running_max, "running_max", {at::kFloat});
  check_dtype(scale, "scale", {at::kFloat});
  check_dtype(zero_point, "zero_point", {at::kInt});
  const c10::cuda::CUDAGuard guard(x.device());
  if (per_row_fake_quant) {
    check_axis(x, ch_axis, "ch_axis");
    o.channels = x.size(ch_axis);
    if (running_min.numel() == 0) {  // torch sizes empty per-channel buffers on first use
      running_min.resize_({o.channels}).fill_(std::numeric_limits<float>::infinity());
      running_max.resize_({o.channels}).fill_(-std::numeric_limits<float>::infinity());
      scale.resize_({o.channels});
      zero_point.resize_({o.channels});
    }
  }
  for (auto [name, t] : {std::pair<const char*, at::Tensor*>{"running_min", &running_min},
                         {"running_max", &running_max}, {"scale", &scale}, {"zero_point", &zero_point}}) {
    if (per_row_fake_quant) {
      check_1d(*t, name, o.channels);
    } else {
      check_single(*t, name);
    }
    check_contiguous(*t, name);
  }
  const at::Tensor obs_on = observer_on.reshape({1}).to(at::kLong), fq_on = fake_quant_on.reshape({1}).to(at::kLong);
  const at::Tensor zp_float = at::empty({o.channels}, scale.options());
  std::vector<int64_t> order = walk_order(x, per_row_fake_quant ? ch_axis : -1);
  if (per_row_fake_quant) std::stable_partition(order.begin(), order.end(), [&](int64_t d) { return d == ch_axis; });
  o.it = make_strided(order, x, x);
  o.x = x.data_ptr();
  o.observer_on = ptr<int64_t>(obs_on);
  o.fake_quant_on = ptr<int64_t>(fq_on);
  o.running_min = ptr<float>(running_min);
  o.running_max = ptr<float>(running_max);
  o.scale = ptr<float>(scale);
  o.zero_point = ptr<int32_t>(zero_point);
  o.zero_point_float = ptr<float>(zp_float);
  o.averaging_const = static_cast<float>(averaging_const);
  o.quant_min = static_cast<int32_t>(qmin);
  o.quant_max = static_cast<int32_t>(qmax);
  o.symmetric = symmetric_quant;
  const at::Tensor ws = at::empty({fused_workspace_floats(o.it, o.channels)}, scale.options());
  o.workspace = ptr<float>(ws);
  check_launch(launch_fused_observe(o, stream()), "fused observer");
  CudaFakeQuantParams p;
  p.fq.scale = o.scale;
  p.fq.zero_point = o.zero_point_float;
  p.fq.int64_cast = per_row_fake_quant;  // torch's per-channel op
  p.enabled = o.fake_quant_on;
  return run_fake_quant(x, p, per_row_fake_quant ? ch_axis : -1, qmin, qmax, need_mask);
}

}  // namespace

void bind_cuda(pybind11::module_& m) {
  using namespace pybind11::literals;
  m.def("cuda_fake_quant_per_tensor", &per_tensor, "input"_a, "scale"_a, "zero_point"_a, "quant_min"_a,
        "quant_max"_a, "need_mask"_a);
  m.def("cuda_fake_quant_per_tensor_tq", &per_tensor_tensor_qparams, "input"_a, "scale"_a, "zero_point"_a,
        "quant_min"_a, "quant_max"_a, "need_mask"_a);
  m.def("cuda_fake_quant_per_channel", &per_channel, "input"_a, "scale"_a, "zero_point"_a, "axis"_a, "quant_min"_a,
        "quant_max"_a, "need_mask"_a);
  m.def("cuda_mask_grad", &mask_grad, "grad"_a, "mask"_a, "order"_a);
  // Same names and arguments as the CPU ops with the "cuda_" prefix (fakequant/ops.py's _kernel).
  m.def("cuda_lsq_per_tensor", &lsq_per_tensor, "input"_a, "scale"_a, "zero_point"_a, "quant_min"_a, "quant_max"_a);
  m.def("cuda_lsq_per_tensor_backward", &lsq_per_tensor_backward, "grad"_a, "input"_a, "scale"_a, "zero_point"_a,
        "quant_min"_a, "quant_max"_a, "grad_factor"_a);
  m.def("cuda_lsq_per_channel", &lsq_per_channel, "input"_a, "scale"_a, "zero_point"_a, "axis"_a, "quant_min"_a,
        "quant_max"_a);
  m.def("cuda_lsq_per_channel_backward", &lsq_per_channel_backward, "grad"_a, "input"_a, "scale"_a, "zero_point"_a,
        "axis"_a, "quant_min"_a, "quant_max"_a, "grad_factor"_a);
  m.def("cuda_fused_obs_fake_quant", &fused_obs_fake_quant, "input"_a, "observer_on"_a, "fake_quant_on"_a,
        "running_min"_a, "running_max"_a, "scale"_a, "zero_point"_a, "averaging_const"_a, "quant_min"_a,
        "quant_max"_a, "ch_axis"_a, "per_row_fake_quant"_a, "symmetric_quant"_a, "need_mask"_a);
  bind_cuda_int8(m);
}

}  // namespace fakequant
