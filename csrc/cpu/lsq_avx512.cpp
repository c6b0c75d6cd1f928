// lsq_avx512.cpp — AVX-512 LSQ backward kernels: 16 lanes, masked tails, fp32/fp16/bf16 I/O.
#include <type_traits>

#include "lsq.h"
#include "simd_avx512.h"

namespace fakequant {
namespace {

constexpr int kRne = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;

// One channel's qparams broadcast, or one channel per lane (channels innermost).
struct Lanes {
  __m512 s, zp, inv, lo, hi, g;
};

struct Terms {
  __m512 ds, dz;  // zero outside the lanes k
};

// lsq_grad_element on 16 lanes: writes dx, returns the dscale / dzero_point terms. Full vectors
// (kFull) load and store unmasked: masked stores are slow on some AVX-512 cores.
template <DType T, bool kFull>
inline Terms grad16(const Lanes& q, const char* x, const char* dy, char* dx, __mmask16 k) {
  const __m512 xf = kFull ? load16<T>(x) : load16<T>(x, k), g = kFull ? load16<T>(dy) : load16<T>(dy, k);
  const __m512 xq = int64_cast16(_mm512_roundscale_ps(_mm512_fmadd_ps(xf, q.inv, q.zp), kRne));
  const __mmask16 below = _mm512_cmp_ps_mask(xq, q.lo, _CMP_LT_OQ);
  const __mmask16 out = below | _mm512_cmp_ps_mask(xq, q.hi, _CMP_GT_OQ);  // xq is never NaN here
  const __mmask16 in = static_cast<__mmask16>(~out);
  const __m512 dxv = _mm512_mul_ps(g, _mm512_maskz_mov_ps(in, _mm512_set1_ps(1.f)));
  if constexpr (kFull) {
    store16<T>(dx, dxv);
  } else {
    store16<T>(dx, k, dxv);
  }
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

// dst[0..16) += the lanes k (all when kFull) of v, in double.
template <bool kFull>
inline void add_lanes(double* dst, __m512 v, __mmask16 k) {
  const __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
  const __m512d hi = _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1));
  if constexpr (kFull) {
    _mm512_storeu_pd(dst, _mm512_add_pd(_mm512_loadu_pd(dst), lo));
    _mm512_storeu_pd(dst + 8, _mm512_add_pd(_mm512_loadu_pd(dst + 8), hi));
  } else {
    const __mmask8 k0 = static_cast<__mmask8>(k), k1 = static_cast<__mmask8>(k >> 8);
    _mm512_mask_storeu_pd(dst, k0, _mm512_add_pd(_mm512_maskz_loadu_pd(k0, dst), lo));
    _mm512_mask_storeu_pd(dst + 8, k1, _mm512_add_pd(_mm512_maskz_loadu_pd(k1, dst + 8), hi));
  }
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
  auto add = [&](const Terms& t) {
    acc_s = _mm512_add_ps(acc_s, t.ds);
    acc_z = _mm512_add_ps(acc_z, t.dz);
    if (++pending == kLsqFlush) {
      sum_s += sum_lanes(acc_s);
      sum_z += sum_lanes(acc_z);
      acc_s = acc_z = _mm512_setzero_ps();
      pending = 0;
    }
  };
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) add(grad16<T, true>(q, x + i * es, dy + i * es, dx + i * es, 0xffff));
  if (i < n) add(grad16<T, false>(q, x + i * es, dy + i * es, dx + i * es, lanes16(n - i)));
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
  auto step = [&](int64_t i, __mmask16 k, auto full) {
    constexpr bool kFull = decltype(full)::value;
    const int64_t c = c0 + i;
    const __m512 s = kFull ? _mm512_loadu_ps(p.scale + c) : _mm512_mask_loadu_ps(_mm512_set1_ps(1.f), k, p.scale + c);
    const __m512 zp = kFull ? _mm512_loadu_ps(p.zero_point + c) : _mm512_maskz_loadu_ps(k, p.zero_point + c);
    const Lanes q{s, zp, _mm512_div_ps(_mm512_set1_ps(1.f), s), lo, hi, g};
    const Terms t = grad16<T, kFull>(q, x + i * es, dy + i * es, dx + i * es, k);
    add_lanes<kFull>(ds + c, t.ds, k);
    add_lanes<kFull>(dz + c, t.dz, k);
  };
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) step(i, 0xffff, std::true_type{});
  if (i < n) step(i, lanes16(n - i), std::false_type{});
}

}  // namespace

void lsq_grad_avx512(const LsqGradParams& p, int64_t begin, int64_t end, double* ds, double* dz) {
  dispatch_lsq_grad(p, begin, end, ds, dz,
                    [&](auto t, bool per_lane, int64_t c, const char* x, const char* dy, char* dx, int64_t n) {
                      constexpr DType T = decltype(t)::value;
                      if (per_lane) {
                        row_channel_per_lane<T>(p, c, x, dy, dx, n, ds, dz);
                      } else {
                        row_one_channel<T>(p, c, x, dy, dx, n, ds, dz);
                      }
                      return n;  // masked tails: the whole row
                    });
}

}  // namespace fakequant
