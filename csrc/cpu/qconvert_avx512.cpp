// qconvert_avx512.cpp — AVX-512 quantize / dequantize kernels: 16 lanes, masked tails.
#include <immintrin.h>

#include "qconvert.h"
#include "simd.h"

namespace fakequant {

void quantize_avx512(const QConvertParams& p, int64_t begin, int64_t end) {
  const bool vec = qconvert_vector_rows(p);
  const __m512 lo = _mm512_set1_ps(p.quant_min), hi = _mm512_set1_ps(p.quant_max);
  for_each_row(p.it, begin, end, [&](int64_t, const int64_t* idx, int64_t in_off, int64_t out_off, int64_t n) {
    if (!vec) return quantize_row_scalar(p, idx, in_off, out_off, n);
    const int64_t c = p.ch_dim < 0 ? 0 : idx[p.ch_dim];
    const __m512 inv = _mm512_set1_ps(inv_scale_of(p.scale[c])), zp = _mm512_set1_ps(p.zero_point[c]);
    const float* x = static_cast<const float*>(p.x) + in_off;
    int8_t* y = static_cast<int8_t*>(p.y) + out_off;
    for (int64_t i = 0; i < n; i += 16) {
      const __mmask16 k = lanes16(n - i);
      const __m512 r = _mm512_roundscale_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), inv),
                                            _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      const __m512 q = _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(zp, r), lo), hi);  // max first: NaN -> quant_min
      _mm512_mask_cvtepi32_storeu_epi8(y + i, k, _mm512_cvttps_epi32(q));
    }
  });
}

void dequantize_avx512(const QConvertParams& p, int64_t begin, int64_t end) {
  const bool vec = qconvert_vector_rows(p);
  for_each_row(p.it, begin, end, [&](int64_t, const int64_t* idx, int64_t in_off, int64_t out_off, int64_t n) {
    if (!vec) return dequantize_row_scalar(p, idx, in_off, out_off, n);
    const int64_t c = p.ch_dim < 0 ? 0 : idx[p.ch_dim];
    const __m512 s = _mm512_set1_ps(p.scale[c]), zp = _mm512_set1_ps(p.zero_point[c]);
    const int8_t* x = static_cast<const int8_t*>(p.x) + in_off;
    float* y = static_cast<float*>(p.y) + out_off;
    for (int64_t i = 0; i < n; i += 16) {
      const __mmask16 k = lanes16(n - i);
      const __m128i b = _mm_maskz_loadu_epi8(k, x + i);
      const __m512i q = p.q_signed ? _mm512_cvtepi8_epi32(b) : _mm512_cvtepu8_epi32(b);
      _mm512_mask_storeu_ps(y + i, k, _mm512_mul_ps(_mm512_sub_ps(_mm512_cvtepi32_ps(q), zp), s));
    }
  });
}

}  // namespace fakequant
