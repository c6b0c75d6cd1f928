// lsq_avx2.cpp — AVX2 LSQ backward kernels: 8 lanes, scalar tails, fp32/fp16/bf16 I/O.
#include "lsq.h"
#include "simd_avx2.h"

namespace fakequant {
namespace {

constexpr int kRne = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;

// One channel's qparams broadcast, or one channel per lane.
struct Lanes {
  __m256 s, zp, inv, lo, hi, g;
};

struct Terms {
  __m256 ds, dz;
};

// lsq_grad_element on 8 lanes: writes dx, returns the dscale / dzero_point terms.
template <DType T>
inline Terms grad8(const Lanes& q, const char* x, const char* dy, char* dx) {
  const __m256 xf = load8<T>(x), g = load8<T>(dy);
  const __m256 xq = int64_cast8(_mm256_round_ps(_mm256_fmadd_ps(xf, q.inv, q.zp), kRne));
  const __m256 below = _mm256_cmp_ps(xq, q.lo, _CMP_LT_OQ);
  const __m256 out = _mm256_or_ps(below, _mm256_cmp_ps(xq, q.hi, _CMP_GT_OQ));  // xq is never NaN here
  store8<T>(dx, _mm256_mul_ps(g, _mm256_andnot_ps(out, _mm256_set1_ps(1.f))));
  const __m256 err = _mm256_fmsub_ps(_mm256_sub_ps(xq, q.zp), q.s, xf);  // xfq - x, rounded once
  const __m256 ds_in = _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(g, err), q.inv), q.g);
  const __m256 edge = _mm256_blendv_ps(_mm256_sub_ps(q.hi, q.zp), _mm256_sub_ps(q.lo, q.zp), below);
  const __m256 ds_out = _mm256_mul_ps(_mm256_mul_ps(g, edge), q.g);
  const __m256 dz = _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(g, _mm256_set1_ps(-1.f)), q.s), q.g);
  return {_mm256_blendv_ps(ds_in, ds_out, out), _mm256_and_ps(out, dz)};
}

inline double sum_lanes(__m256 v) {
  const __m256d d =
      _mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)), _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
  const __m128d h = _mm_add_pd(_mm256_castpd256_pd128(d), _mm256_extractf128_pd(d, 1));
  return _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)));
}

// dst[0..8) += v, in double.
inline void add_lanes(double* dst, __m256 v) {
  _mm256_storeu_pd(dst, _mm256_add_pd(_mm256_loadu_pd(dst), _mm256_cvtps_pd(_mm256_castps256_ps128(v))));
  _mm256_storeu_pd(dst + 4, _mm256_add_pd(_mm256_loadu_pd(dst + 4), _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1))));
}

// Full vectors of one unit-stride row; returns how many elements it did (a multiple of 8).
template <DType T>
int64_t row_one_channel(const LsqGradParams& p, int64_t c, const char* x, const char* dy, char* dx, int64_t n,
                        double* ds, double* dz) {
  constexpr int64_t es = T == DType::F32 ? 4 : 2;
  const float s = p.scale[c], zp = p.zero_point[c];
  const Lanes q{_mm256_set1_ps(s),          _mm256_set1_ps(zp),          _mm256_set1_ps(inv_scale_of(s)),
                _mm256_set1_ps(p.quant_min), _mm256_set1_ps(p.quant_max), _mm256_set1_ps(p.grad_factor)};
  __m256 acc_s = _mm256_setzero_ps(), acc_z = _mm256_setzero_ps();
  double sum_s = 0, sum_z = 0;
  int pending = 0;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const Terms t = grad8<T>(q, x + i * es, dy + i * es, dx + i * es);
    acc_s = _mm256_add_ps(acc_s, t.ds);
    acc_z = _mm256_add_ps(acc_z, t.dz);
    if (++pending == kLsqFlush) {
      sum_s += sum_lanes(acc_s);
      sum_z += sum_lanes(acc_z);
      acc_s = acc_z = _mm256_setzero_ps();
      pending = 0;
    }
  }
  ds[c] += sum_s + sum_lanes(acc_s);
  dz[c] += sum_z + sum_lanes(acc_z);
  return i;
}

// Channels innermost: element i of the row belongs to channel c0 + i.
template <DType T>
int64_t row_channel_per_lane(const LsqGradParams& p, int64_t c0, const char* x, const char* dy, char* dx, int64_t n,
                             double* ds, double* dz) {
  constexpr int64_t es = T == DType::F32 ? 4 : 2;
  const __m256 lo = _mm256_set1_ps(p.quant_min), hi = _mm256_set1_ps(p.quant_max);
  const __m256 g = _mm256_set1_ps(p.grad_factor);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 s = _mm256_loadu_ps(p.scale + c0 + i);
    const Lanes q{s, _mm256_loadu_ps(p.zero_point + c0 + i), _mm256_div_ps(_mm256_set1_ps(1.f), s), lo, hi, g};
    const Terms t = grad8<T>(q, x + i * es, dy + i * es, dx + i * es);
    add_lanes(ds + c0 + i, t.ds);
    add_lanes(dz + c0 + i, t.dz);
  }
  return i;
}

}  // namespace

void lsq_grad_avx2(const LsqGradParams& p, int64_t begin, int64_t end, double* ds, double* dz) {
  dispatch_lsq_grad(p, begin, end, ds, dz,
                    [&](auto t, bool per_lane, int64_t c, const char* x, const char* dy, char* dx, int64_t n) {
                      constexpr DType T = decltype(t)::value;
                      return per_lane ? row_channel_per_lane<T>(p, c, x, dy, dx, n, ds, dz)
                                      : row_one_channel<T>(p, c, x, dy, dx, n, ds, dz);
                    });
}

}  // namespace fakequant
