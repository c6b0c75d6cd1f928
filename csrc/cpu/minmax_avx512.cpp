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
    const __m512 a = load16<T>(x + i * es, 0xffff), b = load16<T>(x + (i + 16) * es, 0xffff);
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
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = lanes16(n - i);
    const __m512 v = load16<T>(x + i * es, k);
    const __m512 lo = _mm512_maskz_loadu_ps(k, mn + i), hi = _mm512_maskz_loadu_ps(k, mx + i);
    const __mmask16 lo_nan = _mm512_cmp_ps_mask(lo, lo, _CMP_UNORD_Q), hi_nan = _mm512_cmp_ps_mask(hi, hi, _CMP_UNORD_Q);
    _mm512_mask_storeu_ps(mn + i, k, _mm512_mask_mov_ps(_mm512_min_ps(lo, v), lo_nan, lo));
    _mm512_mask_storeu_ps(mx + i, k, _mm512_mask_mov_ps(_mm512_max_ps(hi, v), hi_nan, hi));
  }
}

template <DType T>
void minmax_range(const MinMaxParams& p, int64_t begin, int64_t end, float* mn, float* mx) {
  constexpr int64_t es = T == DType::F32 ? 4 : 2;
  const int last = p.it.ndim - 1;
  const bool vec = p.it.in_stride[last] == 1;
  for_each_row(p.it, begin, end, [&](int64_t, const int64_t* idx, int64_t off, int64_t, int64_t n) {
    if (!vec) return minmax_row_scalar(p, idx, off, n, mn, mx);
    const char* x = static_cast<const char*>(p.x) + off * es;
    const int64_t c = p.ch_dim < 0 ? 0 : idx[p.ch_dim];
    if (p.ch_dim == last) {
      row_channel_per_lane<T>(x, n, mn + c, mx + c);
    } else {
      row_one_channel<T>(x, n, mn + c, mx + c);
    }
  });
}

}  // namespace

void minmax_avx512(const MinMaxParams& p, int64_t begin, int64_t end, float* mn, float* mx) {
  switch (p.dtype) {
    case DType::F32: return minmax_range<DType::F32>(p, begin, end, mn, mx);
    case DType::F16: return minmax_range<DType::F16>(p, begin, end, mn, mx);
    case DType::BF16: return minmax_range<DType::BF16>(p, begin, end, mn, mx);
    default: return minmax_ref(p, begin, end, mn, mx);
  }
}

}  // namespace fakequant
