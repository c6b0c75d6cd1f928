// minmax_avx512.cpp — AVX-512 min / max kernels: 16 lanes, two accumulators, masked tails, fp32/fp16/bf16.
#include "minmax.h"
#include "simd_avx512.h"

namespace fakequant {
namespace {

// One channel per row: lane-wise min / max with a NaN flag, folded into mn[c] / mx[c] at the end.
template <DType T>
void row_one_channel(const char* x, int64_t n, float* mn, float* mx) {
  constexpr int64_t es = T == DType::F32 ? 4 : 2;
  __m512 lo0 = _mm512_set1_ps(INFINITY), lo1 = lo0, hi0 = _mm512_set1_ps(-INFINITY), hi1 = hi0;
  __mmask16 nan = 0;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512 a = load16<T>(x + i * es), b = load16<T>(x + (i + 16) * es);
    lo0 = _mm512_min_ps(lo0, a);
    hi0 = _mm512_max_ps(hi0, a);
    lo1 = _mm512_min_ps(lo1, b);
    hi1 = _mm512_max_ps(hi1, b);
    nan |= _mm512_cmp_ps_mask(a, b, _CMP_UNORD_Q);
  }
  for (; i < n; i += 16) {
    const __mmask16 k = lanes16(n - i);
    const __m512 a = load16<T>(x + i * es, k);
    lo0 = _mm512_mask_min_ps(lo0, k, lo0, a);
    hi0 = _mm512_mask_max_ps(hi0, k, hi0, a);
    nan |= _mm512_mask_cmp_ps_mask(k, a, a, _CMP_UNORD_Q);
  }
  if (nan) {
    *mn = *mx = NAN;
    return;
  }
  *mn = fold_min(*mn, _mm512_reduce_min_ps(_mm512_min_ps(lo0, lo1)));
  *mx = fold_max(*mx, _mm512_reduce_max_ps(_mm512_max_ps(hi0, hi1)));
}

// Channels innermost: lane i folds into channel c0 + i, NaN-sticky as fold_min / fold_max.
template <DType T>
void row_channel_per_lane(const char* x, int64_t n, float* mn, float* mx) {
  constexpr int64_t es = T == DType::F32 ? 4 : 2;
  auto fold = [](__m512 acc, __m512 folded) {  // keeps a NaN accumulator
    return _mm512_mask_mov_ps(folded, _mm512_cmp_ps_mask(acc, acc, _CMP_UNORD_Q), acc);
  };
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {  // full vectors unmasked: masked stores are slow on some AVX-512 cores
    const __m512 v = load16<T>(x + i * es), lo = _mm512_loadu_ps(mn + i), hi = _mm512_loadu_ps(mx + i);
    _mm512_storeu_ps(mn + i, fold(lo, _mm512_min_ps(lo, v)));
    _mm512_storeu_ps(mx + i, fold(hi, _mm512_max_ps(hi, v)));
  }
  if (i == n) return;
  const __mmask16 k = lanes16(n - i);
  const __m512 v = load16<T>(x + i * es, k);
  const __m512 lo = _mm512_maskz_loadu_ps(k, mn + i), hi = _mm512_maskz_loadu_ps(k, mx + i);
  _mm512_mask_storeu_ps(mn + i, k, fold(lo, _mm512_min_ps(lo, v)));
  _mm512_mask_storeu_ps(mx + i, k, fold(hi, _mm512_max_ps(hi, v)));
}

}  // namespace

void minmax_avx512(const MinMaxParams& p, int64_t begin, int64_t end, float* mn, float* mx) {
  dispatch_minmax(p, begin, end, mn, mx, [](auto t, bool per_lane, const char* x, int64_t n, float* lo, float* hi) {
    constexpr DType T = decltype(t)::value;
    if (per_lane) {
      row_channel_per_lane<T>(x, n, lo, hi);
    } else {
      row_one_channel<T>(x, n, lo, hi);
    }
    return n;  // masked tails: the whole row
  });
}

}  // namespace fakequant
