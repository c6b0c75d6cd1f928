// lsq_grad.h — the learnable (LSQ) fake quant's per-element gradient rule and zero-point rounding, host and device.
#pragma once

#include <cmath>

#include "../cpu/fake_quant.h"

namespace fakequant {
namespace cuda {

// The zero point torch's learnable forward uses: clamp(round half even(zp)).
FQ_HD inline float lsq_forward_zero_point(float zp, float qmin, float qmax) {
  return clamp_q(std::nearbyint(zp), qmin, qmax);
}

// The one its backward uses: (int64) clamp(zp + 0.5) per tensor, clamp(round(zp)) per channel.
FQ_HD inline float lsq_backward_zero_point(float zp, bool per_tensor, float qmin, float qmax) {
  if (per_tensor) return std::trunc(clamp_q(zp + 0.5f, qmin, qmax));
  return lsq_forward_zero_point(zp, qmin, qmax);
}

struct LsqGrad {
  float dx, ds, dz;
};

// torch's _fake_quantize_learnable_*_backward rule for one element (zp from lsq_backward_zero_point).
// torch's kernels are built with FMA contraction: xq = nearbyint(fma(x, inv, zp)) and
// xfq - x = fma(clamp(xq) - zp, s, -x); the explicit fmas reproduce its gradients bit for bit.
FQ_HD inline LsqGrad lsq_grad(float x, float dy, float s, float inv, float zp, float qmin, float qmax, float g) {
  const float xq = std::nearbyint(std::fma(x, inv, zp));
  LsqGrad r;
  r.dx = masked_grad(dy, in_quant_range(xq, qmin, qmax));
  if (xq < qmin || xq > qmax) {
    r.dz = dy * -1.f * s * g;
    r.ds = (xq < qmin ? dy * (qmin - zp) : dy * (qmax - zp)) * g;
  } else {
    r.dz = 0.f;
    r.ds = dy * std::fma(clamp_q(xq, qmin, qmax) - zp, s, -x) * inv * g;
  }
  return r;
}

}  // namespace cuda
}  // namespace fakequant
