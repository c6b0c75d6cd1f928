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

template <DType T>
void minmax_range(const MinMaxParams& p, int64_t begin, int64_t end, float* mn, float* mx) {
  constexpr int64_t es = T == DType::F32 ? 4 : 2;
  const int last = p.it.ndim - 1;
  const bool vec = p.it.in_stride[last] == 1;
  for_each_row(p.it, begin, end, [&](int64_t, const int64_t* idx, int64_t off, int64_t, int64_t n) {
    int64_t done = 0;
    if (vec) {
      const char* x = static_cast<const char*>(p.x) + off * es;
      const int64_t c = p.ch_dim < 0 ? 0 : idx[p.ch_dim];
      done = p.ch_dim == last ? row_channel_per_lane<T>(x, n, mn + c, mx + c) : row_one_channel<T>(x, n, mn + c, mx + c);
    }
    if (done == n) return;
    int64_t tail_idx[kMaxDims];
    for (int d = 0; d <= last; ++d) tail_idx[d] = idx[d];
    tail_idx[last] += done;
    minmax_row_scalar(p, tail_idx, off + done * p.it.in_stride[last], n - done, mn, mx);
  });
}

}  // namespace

void minmax_avx2(const MinMaxParams& p, int64_t begin, int64_t end, float* mn, float* mx) {
  switch (p.dtype) {
    case DType::F32: return minmax_range<DType::F32>(p, begin, end, mn, mx);
    case DType::F16: return minmax_range<DType::F16>(p, begin, end, mn, mx);
    case DType::BF16: return minmax_range<DType::BF16>(p, begin, end, mn, mx);
    default: return minmax_ref(p, begin, end, mn, mx);
  }
}

}  // namespace fakequant
