// int8_dwconv_avx2.cpp — AVX2 depthwise int8 conv: 8 channels per vector, taps through vpmaddwd.
#include <immintrin.h>

#include <vector>

#include "int8_dwconv.h"
#include "requant_avx2.h"

namespace fakequant {

void dwconv_avx2(const DwConvParams& p, int64_t q0, int64_t q1) {
  const ConvGeometry& g = p.g;
  const int64_t taps = g.kh * g.kw;
  std::vector<int64_t> off(taps);
  const __m256i zx = _mm256_set1_epi32(g.x_zp);
  OutPixel o = out_pixel(g, q0);
  for (int64_t q = q0; q < q1; ++q, advance_pixel(g, o)) {
    for (int64_t i = 0; i < g.kh; ++i)
      for (int64_t j = 0; j < g.kw; ++j) off[i * g.kw + j] = tap_offset(g, o, i, j);
    for (int64_t c = 0; c < g.c; c += 8) {
      const int64_t valid = std::min<int64_t>(8, g.c - c);
      __m256i acc = _mm256_setzero_si256();
      for (int64_t t = 0; t < taps; ++t) {
        __m256i xv = zx;
        if (off[t] >= 0) {
          int64_t bytes = 0;
          std::memcpy(&bytes, g.x + off[t] + c, static_cast<size_t>(valid));
          xv = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(bytes));
        }
        // x in the low half of each int32 lane, the tap (|tap| < 2^15) sign-extended: vpmaddwd
        // gives x * tap + 0 * (0 or -1) exactly.
        const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p.taps + t * p.cpad + c));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(xv, wv));
      }
      store8_avx2(p.epi, q, c, acc, static_cast<int>(valid), 0);
    }
  }
}

}  // namespace fakequant
