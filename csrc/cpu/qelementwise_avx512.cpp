// qelementwise_avx512.cpp — AVX-512 uint8 elementwise ops: 16 lanes, masked tails.
#include <immintrin.h>

#include "qelementwise.h"
#include "simd.h"

namespace fakequant {
namespace {

inline __m512 dequant16(const uint8_t* q, __mmask16 k, __m512 zp, __m512 s) {
  const __m512 f = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(k, q)));
  return _mm512_mul_ps(_mm512_sub_ps(f, zp), s);
}

}  // namespace

void qelementwise_avx512(const QElementwiseParams& p, int64_t begin, int64_t end) {
  const __m512 sa = _mm512_set1_ps(p.sa), za = _mm512_set1_ps(p.za), sb = _mm512_set1_ps(p.sb),
               zb = _mm512_set1_ps(p.zb), inv = _mm512_set1_ps(inv_scale_of(p.sy)), zy = _mm512_set1_ps(p.zy),
               lo = _mm512_set1_ps(p.quant_min), hi = _mm512_set1_ps(p.quant_max);
  for (int64_t i = begin; i < end; i += 16) {
    const __mmask16 k = lanes16(end - i);
    __m512 f = dequant16(p.a + i, k, za, sa);
    if (p.op != QOp::Requant) {
      const __m512 fb = dequant16(p.b + i, k, zb, sb);
      f = p.op == QOp::Add ? _mm512_add_ps(f, fb) : _mm512_mul_ps(f, fb);
    }
    const __m512 r = _mm512_roundscale_ps(_mm512_mul_ps(f, inv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512 q = _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(zy, r), lo), hi);  // max first: NaN -> quant_min
    _mm512_mask_cvtepi32_storeu_epi8(p.y + i, k, _mm512_cvttps_epi32(q));
  }
}

}  // namespace fakequant
