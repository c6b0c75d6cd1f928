// int8_dwconv_avx512.cpp — AVX-512 depthwise int8 conv: 16 channels per vector, taps through vpmaddwd.
#include <immintrin.h>

#include <vector>

#include "int8_dwconv.h"
#include "requant_avx512.h"

namespace fakequant {

void dwconv_avx512(const DwConvParams& p, int64_t q0, int64_t q1) {
  const int64_t taps = p.kh * p.kw;
  std::vector<int64_t> off(taps);
  const __m512i zx = _mm512_set1_epi32(p.x_zp);
  for (int64_t q = q0; q < q1; ++q) {
    const int64_t b = q / (p.oh * p.ow), oy = q / p.ow % p.oh, ox = q % p.ow;
    for (int64_t i = 0; i < p.kh; ++i)
      for (int64_t j = 0; j < p.kw; ++j) off[i * p.kw + j] = dw_tap_offset(p, b, oy, ox, i, j);
    for (int64_t c = 0; c < p.c; c += 16) {
      const __mmask16 k = lanes16(p.c - c);
      __m512i acc = _mm512_setzero_si512();
      for (int64_t t = 0; t < taps; ++t) {
        // x in the low half of each int32 lane, the tap (|tap| < 2^15) sign-extended: vpmaddwd
        // gives x * tap + 0 * (0 or -1) exactly.
        const __m512i xv = off[t] < 0 ? zx : _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(k, p.x + off[t] + c));
        acc = _mm512_add_epi32(acc, _mm512_madd_epi16(xv, _mm512_loadu_si512(p.taps + t * p.cpad + c)));
      }
      store16_avx512(p.epi, cols16(p.epi, c), q, c, acc, k, 0);
    }
  }
}

}  // namespace fakequant
