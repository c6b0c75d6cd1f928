// qelementwise_avx2.cpp — AVX2 uint8 elementwise ops: 8 lanes, scalar tail.
#include <immintrin.h>

#include "qelementwise.h"
#include "simd.h"

namespace fakequant {
namespace {

inline __m256 dequant8(const uint8_t* q, __m256 zp, __m256 s) {
  const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(q));
  return _mm256_mul_ps(_mm256_sub_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(b)), zp), s);
}

}  // namespace

void qelementwise_avx2(const QElementwiseParams& p, int64_t begin, int64_t end) {
  const __m256 sa = _mm256_set1_ps(p.sa), za = _mm256_set1_ps(p.za), sb = _mm256_set1_ps(p.sb),
               zb = _mm256_set1_ps(p.zb), inv = _mm256_set1_ps(inv_scale_of(p.sy)), zy = _mm256_set1_ps(p.zy),
               lo = _mm256_set1_ps(p.quant_min), hi = _mm256_set1_ps(p.quant_max);
  const int64_t full = begin + (end - begin) / 8 * 8;
  for (int64_t i = begin; i < full; i += 8) {
    __m256 f = dequant8(p.a + i, za, sa);
    if (p.op != QOp::Requant) {
      const __m256 fb = dequant8(p.b + i, zb, sb);
      f = p.op == QOp::Add ? _mm256_add_ps(f, fb) : _mm256_mul_ps(f, fb);
    }
    const __m256 r = _mm256_round_ps(_mm256_mul_ps(f, inv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m256 q = _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(zy, r), lo), hi);  // max first: NaN -> quant_min
    store_low_bytes8(p.y + i, _mm256_cvttps_epi32(q));  // exact integers in range
  }
  qelementwise_ref(p, full, end);
}

}  // namespace fakequant
