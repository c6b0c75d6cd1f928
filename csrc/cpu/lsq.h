// lsq.h — learnable (LSQ) fake-quant backward kernels: the zero-point rules, the scalar element form
// and per-ISA entry points. Each entry point handles the elements [begin, end) of p.it, writes dx and
// adds the dscale / dzero_point terms of every element of channel c to ds[c] / dz[c].
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "../params.h"
#include "quantize.h"
#include "strided.h"
#include "vec_rows.h"

namespace fakequant {

// The integer zero point torch's LSQ ops derive from the learnable float one: round half to even
// and clamp (forward; per-channel backward), or add 0.5, clamp and truncate (per-tensor backward).
FQ_HD static inline float lsq_zero_point(float zp, float qmin, float qmax, bool per_tensor_backward) {
  if (per_tensor_backward) return std::trunc(std::min(std::max(zp + 0.5f, qmin), qmax));
  return std::min(std::max(std::nearbyint(zp), qmin), qmax);
}

template <class T>
struct LsqGrad {
  T dx, ds, dz;
};

// One element of torch's LSQ backward in T (float; double for float64 input). Unlike the forward,
// the zero point is added before rounding, and the result goes through torch's int64 cast. torch's
// x86 build contracts two steps into fused multiply-adds (checked element by element on torch 2.13):
// x * inv + zp, which decides ties, and xfq - x = (q - zp) * s - x are each rounded once.
template <class T>
FQ_HD static inline LsqGrad<T> lsq_grad_element(T x, T dy, float s, float zp, float qmin, float qmax, float g) {
  const float inv = inv_scale_of(s);
  const T xq = emulate_int64_cast(static_cast<T>(std::nearbyint(std::fma(x, T(inv), T(zp)))));
  if (in_quant_range(xq, qmin, qmax)) {
    const T err = std::fma(xq - zp, T(s), -x);
    return {dy * T(1), dy * err * inv * g, T(0)};
  }
  const T edge = xq < qmin ? static_cast<T>(qmin) - zp : static_cast<T>(qmax) - zp;
  return {dy * T(0), dy * edge * g, dy * T(-1) * s * g};
}

// A row of n elements through the scalar element function (reference kernel, tails, odd strides).
// static, like lsq_grad_element: each kernel file keeps its own copy, built for its ISA, so the
// linker cannot hand the reference kernel a copy compiled with AVX-512.
static inline void lsq_grad_row_scalar(const LsqGradParams& p, const int64_t* idx, int64_t off, int64_t n,
                                       double* ds, double* dz) {
  const int last = p.it.ndim - 1;
  const int64_t c0 = p.ch_dim < 0 ? 0 : idx[p.ch_dim];
  const int64_t dc = p.ch_dim == last ? 1 : 0;
  const int64_t st = p.it.in_stride[last];
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = c0 + i * dc, e = off + i * st;
    const float s = p.scale[c], zp = p.zero_point[c];
    if (p.dtype == DType::F64) {
      const auto g = lsq_grad_element<double>(static_cast<const double*>(p.x)[e], static_cast<const double*>(p.dy)[e],
                                              s, zp, p.quant_min, p.quant_max, p.grad_factor);
      static_cast<double*>(p.dx)[e] = g.dx;
      ds[c] += g.ds;
      dz[c] += g.dz;
    } else {
      const auto g = lsq_grad_element<float>(load_as_float(p.x, e, p.dtype), load_as_float(p.dy, e, p.dtype), s, zp,
                                             p.quant_min, p.quant_max, p.grad_factor);
      store_from_float(p.dx, e, p.dtype, g.dx);
      ds[c] += g.ds;
      dz[c] += g.dz;
    }
  }
}

// Vector kernels sum this many vectors of terms in float lanes before adding them to the double sums.
constexpr int kLsqFlush = 64;

void lsq_grad_ref(const LsqGradParams& p, int64_t begin, int64_t end, double* ds, double* dz);
void lsq_grad_avx2(const LsqGradParams& p, int64_t begin, int64_t end, double* ds, double* dz);
void lsq_grad_avx512(const LsqGradParams& p, int64_t begin, int64_t end, double* ds, double* dz);

// The vector kernels' entry: for fp32/fp16/bf16, row(dtype_tag, per_lane, c, x, dy, dx, n) does the
// vectors of each unit-stride row whose first element has channel c (per_lane: channels innermost)
// and returns how many elements it did; the scalar form does the rest. Other dtypes: the reference kernel.
template <class Row>
static inline void dispatch_lsq_grad(const LsqGradParams& p, int64_t begin, int64_t end, double* ds, double* dz,
                                     Row&& row) {
  const int last = p.it.ndim - 1;
  const bool ok = for_each_vector_row(
      p.it, p.dtype, begin, end,
      [&](auto t, const int64_t* idx, int64_t off, int64_t n) {
        const int64_t es = elem_size(decltype(t)::value);
        return row(t, p.ch_dim == last, p.ch_dim < 0 ? 0 : idx[p.ch_dim], static_cast<const char*>(p.x) + off * es,
                   static_cast<const char*>(p.dy) + off * es, static_cast<char*>(p.dx) + off * es, n);
      },
      [&](const int64_t* idx, int64_t off, int64_t n) { lsq_grad_row_scalar(p, idx, off, n, ds, dz); });
  if (!ok) lsq_grad_ref(p, begin, end, ds, dz);
}

}  // namespace fakequant
