// minmax_avx2.cpp — AVX2 min / max kernels: 8 lanes, two accumulators, scalar tails, fp32/fp16/bf16.
#include "minmax.h"
#include "simd_avx2.h"

namespace fakequant {
namespace {

// One channel per row: lane-wise min / max with a NaN flag; returns how many elements it did.
template <DType T>
int64_t row_one_channel(const char* x, int64_t n, float* mn, float* mx) {
  constexpr int64_t es = T == DType::F32 ? 4 : 2;
  __m256 lo0 = _mm256_set1_ps(INFINITY), lo1 = lo0, hi0 = _mm256_set1_ps(-INFINITY), hi1 = hi0;
  __m256 nan = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 a = load8<T>(x + i * es), b = load8<T>(x + (i + 8) * es);
    lo0 = _mm256_min_ps(lo0, a);
    hi0 = _mm256_max_ps(hi0, a);
    lo1 = _mm256_min_ps(lo1, b);
    hi1 = _mm256_max_ps(hi1, b);
    nan = _mm256_or_ps(nan, _mm256_cmp_ps(a, b, _CMP_UNORD_Q));
  }
  for (; i + 8 <= n; i += 8) {
    const __m256 a = load8<T>(x + i * es);
    lo0 = _mm256_min_ps(lo0, a);
    hi0 = _mm256_max_ps(hi0, a);
    nan = _mm256_or_ps(nan, _mm256_cmp_ps(a, a, _CMP_UNORD_Q));
  }
  if (i == 0) return 0;
  if (_mm256_movemask_ps(nan)) {
    *mn = *mx = NAN;
    return i;
  }
  alignas(32) float lo[8], hi[8];
  _mm256_store_ps(lo, _mm256_min_ps(lo0, lo1));
  _mm256_store_ps(hi, _mm256_max_ps(hi0, hi1));
  for (int l = 0; l < 8; ++l) {
    *mn = fold_min(*mn, lo[l]);
    *mx = fold_max(*mx, hi[l]);
  }
  return i;
}

// Channels innermost: lane i folds into channel c0 + i, NaN-sticky as fold_min / fold_max.
template <DType T>
int64_t row_channel_per_lane(const char* x, int64_t n, float* mn, float* mx) {
  constexpr int64_t es = T == DType::F32 ? 4 : 2;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = load8<T>(x + i * es);
    const __m256 lo = _mm256_loadu_ps(mn + i), hi = _mm256_loadu_ps(mx + i);
    _mm256_storeu_ps(mn + i, _mm256_blendv_ps(_mm256_min_ps(lo, v), lo, _mm256_cmp_ps(lo, lo, _CMP_UNORD_Q)));
    _mm256_storeu_ps(mx + i, _mm256_blendv_ps(_mm256_max_ps(hi, v), hi, _mm256_cmp_ps(hi, hi, _CMP_UNORD_Q)));
  }
  return i;
}

}  // namespace

void minmax_avx2(const MinMaxParams& p, int64_t begin, int64_t end, float* mn, float* mx) {
  dispatch_minmax(p, begin, end, mn, mx, [](auto t, bool per_lane, const char* x, int64_t n, float* lo, float* hi) {
    constexpr DType T = decltype(t)::value;
    return per_lane ? row_channel_per_lane<T>(x, n, lo, hi) : row_one_channel<T>(x, n, lo, hi);
  });
}

}  // namespace fakequant
