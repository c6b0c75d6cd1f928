// int8_dwconv_avx512.cpp — AVX-512 depthwise int8 conv: 16 channels per vector, taps via vpdpwssd.
//
// Up to 8 neighbouring output pixels share each tap's weights where no tap touches the padding.
#include <immintrin.h>

#include <vector>

#include "int8_dwconv.h"
#include "requant_avx512.h"

namespace fakequant {
namespace {

// acc + x * tap for 16 channels: x (u8) in the low half of each int32 lane and the tap (|tap| <
// 2^15) sign-extended, so vpdpwssd adds x * tap + 0 * (0 or -1) exactly.
inline __m512i add_tap(__m512i acc, __m128i x, __m512i tap) {
  return _mm512_dpwssd_epi32(acc, _mm512_cvtepu8_epi32(x), tap);
}

// PX output pixels q, q + 1, ... of one output row whose taps all lie inside the input; x0 points
// at tap (0, 0) of pixel q.
template <int PX>
void interior_pixels(const DwConvParams& p, int64_t q, const uint8_t* x0) {
  const ConvGeometry& g = p.g;
  const int64_t step = g.sw * g.c, row = g.dh * g.w * g.c, col = g.dw * g.c;
  for (int64_t c = 0; c < g.c; c += 16) {
    const __mmask16 k = lanes16(g.c - c);
    __m512i acc[PX];
#pragma GCC unroll 8
    for (int px = 0; px < PX; ++px) acc[px] = _mm512_setzero_si512();
    for (int64_t i = 0; i < g.kh; ++i)
      for (int64_t j = 0; j < g.kw; ++j) {
        const __m512i w = _mm512_loadu_si512(p.taps + (i * g.kw + j) * p.cpad + c);
        const uint8_t* src = x0 + i * row + j * col + c;
#pragma GCC unroll 8
        for (int px = 0; px < PX; ++px) acc[px] = add_tap(acc[px], _mm_maskz_loadu_epi8(k, src + px * step), w);
      }
    const Cols16 cv = cols16(p.epi, c);
#pragma GCC unroll 8
    for (int px = 0; px < PX; ++px) store16_avx512(p.epi, cv, q + px, c, acc[px], k, 0);
  }
}

// One output pixel, any tap possibly in the padding.
void edge_pixel(const DwConvParams& p, int64_t q, int64_t* off) {
  const ConvGeometry& g = p.g;
  const int64_t taps = g.kh * g.kw;
  for (int64_t t = 0; t < taps; ++t) off[t] = conv_tap_offset(g, q, t / g.kw, t % g.kw);
  const __m128i zx = _mm_set1_epi8(static_cast<char>(g.x_zp));
  for (int64_t c = 0; c < g.c; c += 16) {
    const __mmask16 k = lanes16(g.c - c);
    __m512i acc = _mm512_setzero_si512();
    for (int64_t t = 0; t < taps; ++t) {
      const __m128i x = off[t] < 0 ? zx : _mm_maskz_loadu_epi8(k, g.x + off[t] + c);
      acc = add_tap(acc, x, _mm512_loadu_si512(p.taps + t * p.cpad + c));
    }
    store16_avx512(p.epi, cols16(p.epi, c), q, c, acc, k, 0);
  }
}

}  // namespace

void dwconv_avx512(const DwConvParams& p, int64_t q0, int64_t q1) {
  const ConvGeometry& g = p.g;
  std::vector<int64_t> off(g.kh * g.kw);
  for (int64_t q = q0; q < q1;) {
    const int64_t b = q / (g.oh * g.ow), oy = q / g.ow % g.oh, ox = q % g.ow;
    const int64_t iy = oy * g.sh - g.ph, ix = ox * g.sw - g.pw;
    // Pixels from ox on (same output row, within [q0, q1)) whose taps all lie inside the input.
    int64_t run = 0;
    if (iy >= 0 && iy + (g.kh - 1) * g.dh < g.h && ix >= 0 && ix + (g.kw - 1) * g.dw < g.w) {
      const int64_t last = (g.w - 1 - (g.kw - 1) * g.dw + g.pw) / g.sw;  // the last such ox (numerator >= 0 here)
      run = std::min({last - ox + 1, g.ow - ox, q1 - q});
    }
    const uint8_t* x0 = run > 0 ? g.x + ((b * g.h + iy) * g.w + ix) * g.c : nullptr;
    if (run >= 8) {
      interior_pixels<8>(p, q, x0);
      q += 8;
    } else if (run >= 4) {
      interior_pixels<4>(p, q, x0);
      q += 4;
    } else if (run >= 1) {
      interior_pixels<1>(p, q, x0);
      q += 1;
    } else {
      edge_pixel(p, q, off.data());
      q += 1;
    }
  }
}

}  // namespace fakequant
