// lsq_avx512.cpp — AVX-512 LSQ backward kernels: 16 lanes, masked tails, fp32/fp16/bf16 I/O.
#include "lsq.h"
#include "simd_avx512.h"

namespace fakequant {
namespace {

constexpr int kRne = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;

// One channel's qparams broadcast (kVary = false) or one channel per lane (kVary = true).
struct Lanes {
  __m512 s, zp, inv, lo, hi, g;
};

struct Terms {
  __m512 ds, dz;  // zero outside the lanes k
};

// lsq_grad_element on 16 lanes: writes dx, returns the dscale / dzero_point terms.
template <DType T>
inline Terms grad16(const Lanes& q, const char* x, const char* dy, char* dx, __mmask16 k) {
  const __m512 xf = load16<T>(x, k), g = load16<T>(dy, k);
  const __m512 xq = int64_cast16(_mm512_roundscale_ps(_mm512_fmadd_ps(xf, q.inv, q.zp), kRne));
  const __mmask16 below = _mm512_cmp_ps_mask(xq, q.lo, _CMP_LT_OQ);
  const __mmask16 out = below | _mm512_cmp_ps_mask(xq, q.hi, _CMP_GT_OQ);  // xq is never NaN here
  const __mmask16 in = static_cast<__mmask16>(~out);
  store16<T>(dx, k, _mm512_mul_ps(g, _mm512_maskz_mov_ps(in, _mm512_set1_ps(1.f))));
  const __m512 err = _mm512_fmsub_ps(_mm512_sub_ps(xq, q.zp), q.s, xf);  // xfq - x, rounded once
  const __m512 ds_in = _mm512_mul_ps(_mm512_mul_ps(_mm512_mul_ps(g, err), q.inv), q.g);
  const __m512 edge = _mm512_mask_blend_ps(below, _mm512_sub_ps(q.hi, q.zp), _mm512_sub_ps(q.lo, q.zp));
  const __m512 ds_out = _mm512_mul_ps(_mm512_mul_ps(g, edge), q.g);
  const __m512 dz = _mm512_mul_ps(_mm512_mul_ps(_mm512_mul_ps(g, _mm512_set1_ps(-1.f)), q.s), q.g);
  return {_mm512_maskz_mov_ps(k, _mm512_mask_blend_ps(in, ds_out, ds_in)), _mm512_maskz_mov_ps(k & out, dz)};
}

inline double sum_lanes(__m512 v) {
  const __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
  const __m512d hi = _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1));
  return _mm512_reduce_add_pd(_mm512_add_pd(lo, hi));
}

// dst[0..16) += the lanes k of v, in double.
inline void add_lanes(double* dst, __m512 v, __mmask16 k) {
  const __mmask8 k0 = static_cast<__mmask8>(k), k1 = static_cast<__mmask8>(k >> 8);
  const __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
  const __m512d hi = _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1));
  _mm512_mask_storeu_pd(dst, k0, _mm512_add_pd(_mm512_maskz_loadu_pd(k0, dst), lo));
  _mm512_mask_storeu_pd(dst + 8, k1, _mm512_add_pd(_mm512_maskz_loadu_pd(k1, dst + 8), hi));
}

template <DType T>
void row_one_channel(const LsqGradParams& p, int64_t c, const char* x, const char* dy, char* dx, int64_t n,
                     double* ds, double* dz) {
  constexpr int64_t es = T == DType::F32 ? 4 : 2;
  const float s = p.scale[c], zp = p.zero_point[c];
  const Lanes q{_mm512_set1_ps(s),          _mm512_set1_ps(zp),          _mm512_set1_ps(inv_scale_of(s)),
                _mm512_set1_ps(p.quant_min), _mm512_set1_ps(p.quant_max), _mm512_set1_ps(p.grad_factor)};
  __m512 acc_s = _mm512_setzero_ps(), acc_z = _mm512_setzero_ps();
  double sum_s = 0, sum_z = 0;
  int pending = 0;
  for (int64_t i = 0; i < n; i += 16) {
    const Terms t = grad16<T>(q, x + i * es, dy + i * es, dx + i * es, lanes16(n - i));
    acc_s = _mm512_add_ps(acc_s, t.ds);
    acc_z = _mm512_add_ps(acc_z, t.dz);
    if (++pending == kLsqFlush) {
      sum_s += sum_lanes(acc_s);
      sum_z += sum_lanes(acc_z);
      acc_s = acc_z = _mm512_setzero_ps();
      pending = 0;
    }
  }
  ds[c] += sum_s + sum_lanes(acc_s);
  dz[c] += sum_z + sum_lanes(acc_z);
}

// Channels innermost: element i of the row belongs to channel c0 + i.
template <DType T>
void row_channel_per_lane(const LsqGradParams& p, int64_t c0, const char* x, const char* dy, char* dx, int64_t n,
                          double* ds, double* dz) {
  constexpr int64_t es = T == DType::F32 ? 4 : 2;
  const __m512 lo = _mm512_set1_ps(p.quant_min), hi = _mm512_set1_ps(p.quant_max);
  const __m512 g = _mm512_set1_ps(p.grad_factor);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = lanes16(n - i);
    const __m512 s = _mm512_mask_loadu_ps(_mm512_set1_ps(1.f), k, p.scale + c0 + i);
    const Lanes q{s, _mm512_maskz_loadu_ps(k, p.zero_point + c0 + i), _mm512_div_ps(_mm512_set1_ps(1.f), s), lo, hi, g};
    const Terms t = grad16<T>(q, x + i * es, dy + i * es, dx + i * es, k);
    add_lanes(ds + c0 + i, t.ds, k);
    add_lanes(dz + c0 + i, t.dz, k);
  }
}

template <DType T>
void grad_range(const LsqGradParams& p, int64_t begin, int64_t end, double* ds, double* dz) {
  constexpr int64_t es = T == DType::F32 ? 4 : 2;
  const int last = p.it.ndim - 1;
  const bool vec = p.it.in_stride[last] == 1;
  for_each_row(p.it, begin, end, [&](int64_t, const int64_t* idx, int64_t off, int64_t, int64_t n) {
    if (!vec) return lsq_grad_row_scalar(p, idx, off, n, ds, dz);
    const char* x = static_cast<const char*>(p.x) + off * es;
    const char* dy = static_cast<const char*>(p.dy) + off * es;
    char* dx = static_cast<char*>(p.dx) + off * es;
    const int64_t c = p.ch_dim < 0 ? 0 : idx[p.ch_dim];
    if (p.ch_dim == last) {
      row_channel_per_lane<T>(p, c, x, dy, dx, n, ds, dz);
    } else {
      row_one_channel<T>(p, c, x, dy, dx, n, ds, dz);
    }
  });
}

}  // namespace

void lsq_grad_avx512(const LsqGradParams& p, int64_t begin, int64_t end, double* ds, double* dz) {
  switch (p.dtype) {
    case DType::F32: return grad_range<DType::F32>(p, begin, end, ds, dz);
    case DType::F16: return grad_range<DType::F16>(p, begin, end, ds, dz);
    case DType::BF16: return grad_range<DType::BF16>(p, begin, end, ds, dz);
    default: return lsq_grad_ref(p, begin, end, ds, dz);
  }
}

}  // namespace fakequant
