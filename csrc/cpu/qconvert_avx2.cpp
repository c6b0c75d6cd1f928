// qconvert_avx2.cpp — AVX2 quantize / dequantize kernels: 8 lanes, scalar tails.
#include <immintrin.h>

#include "qconvert.h"
#include "simd.h"

namespace fakequant {

void quantize_avx2(const QConvertParams& p, int64_t begin, int64_t end) {
  const bool vec = qconvert_vector_rows(p);
  const __m256 lo = _mm256_set1_ps(p.quant_min), hi = _mm256_set1_ps(p.quant_max);
  for_each_row(p.it, begin, end, [&](int64_t, const int64_t* idx, int64_t in_off, int64_t out_off, int64_t n) {
    if (!vec) return quantize_row_scalar(p, idx, in_off, out_off, n);
    const int64_t c = p.ch_dim < 0 ? 0 : idx[p.ch_dim];
    const __m256 inv = _mm256_set1_ps(inv_scale_of(p.scale[c])), zp = _mm256_set1_ps(p.zero_point[c]);
    const float* x = static_cast<const float*>(p.x) + in_off;
    int8_t* y = static_cast<int8_t*>(p.y) + out_off;
    const int64_t full = n / 8 * 8;
    for (int64_t i = 0; i < full; i += 8) {
      const __m256 r = _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), inv),
                                       _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      const __m256 q = _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(zp, r), lo), hi);  // max first: NaN -> quant_min
      store_low_bytes8(y + i, _mm256_cvttps_epi32(q));  // exact integers in range
    }
    quantize_row_scalar(p, idx, in_off + full, out_off + full, n - full);
  });
}

void dequantize_avx2(const QConvertParams& p, int64_t begin, int64_t end) {
  const bool vec = qconvert_vector_rows(p);
  for_each_row(p.it, begin, end, [&](int64_t, const int64_t* idx, int64_t in_off, int64_t out_off, int64_t n) {
    if (!vec) return dequantize_row_scalar(p, idx, in_off, out_off, n);
    const int64_t c = p.ch_dim < 0 ? 0 : idx[p.ch_dim];
    const __m256 s = _mm256_set1_ps(p.scale[c]), zp = _mm256_set1_ps(p.zero_point[c]);
    const int8_t* x = static_cast<const int8_t*>(p.x) + in_off;
    float* y = static_cast<float*>(p.y) + out_off;
    const int64_t full = n / 8 * 8;
    for (int64_t i = 0; i < full; i += 8) {
      const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(x + i));
      const __m256i q = p.q_signed ? _mm256_cvtepi8_epi32(b) : _mm256_cvtepu8_epi32(b);
      _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_sub_ps(_mm256_cvtepi32_ps(q), zp), s));
    }
    dequantize_row_scalar(p, idx, in_off + full, out_off + full, n - full);
  });
}

}  // namespace fakequant
