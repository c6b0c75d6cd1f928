// int8_dwconv_avx512.cpp — AVX-512 depthwise int8 conv: 16 channels per vector, taps via vpdpwssd.
//
// Up to 8 neighbouring output pixels share each tap's weights where no tap touches the padding (a
// lone pixel sums its taps in two interleaved accumulators: shorter dependency chains). With fewer
// than 16 channels dividing 16 and stride 1, one vector holds 16 / C neighbouring pixels.
#include <immintrin.h>

#include <vector>

#include "int8_dwconv.h"
#include "requant_avx512.h"

namespace fakequant {
namespace {

// acc + x * tap for 16 channels: x (u8) in the low half of each int32 lane and the tap (|tap| <
// 2^15) sign-extended, so vpdpwssd adds x * tap + 0 * (0 or -1) exactly.
inline __m512i add_tap(__m512i acc, __m512i x, __m512i tap) { return _mm512_dpwssd_epi32(acc, x, tap); }

// Output pixels q .. q + PX - 1 (input `step` bytes apart), channels [c, c + 16 * CV) clipped to
// g.c: src[t] points at tap t's input pixel for pixel q, or is null where the tap reads padding
// (then PX == 1).
template <int PX, int CV>
void pixels(const DwConvParams& p, int64_t q, const uint8_t* const* src, int64_t step, int64_t c) {
  const ConvGeometry& g = p.g;
  const int64_t taps = g.kh * g.kw;
  __mmask16 k[CV];
#pragma GCC unroll 4
  for (int v = 0; v < CV; ++v) k[v] = lanes16(g.c - c - 16 * v);
  __m512i acc0[PX][CV], acc1[PX][CV];
#pragma GCC unroll 8
  for (int px = 0; px < PX; ++px)
#pragma GCC unroll 4
    for (int v = 0; v < CV; ++v) acc0[px][v] = acc1[px][v] = _mm512_setzero_si512();
  const __m512i zx = _mm512_set1_epi32(g.x_zp);
  const auto add = [&](__m512i(&a)[PX][CV], int64_t t) __attribute__((always_inline)) {
    const int32_t* w = p.taps + t * p.cpad + c;
    const uint8_t* s = src[t] + c;
#pragma GCC unroll 4
    for (int v = 0; v < CV; ++v) {
      const __m512i wv = _mm512_loadu_si512(w + 16 * v);
      if (PX == 1 && !src[t]) {
        a[0][v] = add_tap(a[0][v], zx, wv);
        continue;
      }
#pragma GCC unroll 8
      for (int px = 0; px < PX; ++px)
        a[px][v] = add_tap(a[px][v], _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(k[v], s + 16 * v + px * step)), wv);
    }
  };
  int64_t t = 0;
  if (PX == 1)  // several pixels already give independent chains
    for (; t + 1 < taps; t += 2) {
      add(acc0, t);
      add(acc1, t + 1);
    }
  for (; t < taps; ++t) add(acc0, t);
#pragma GCC unroll 4
  for (int v = 0; v < CV; ++v) {
    const Cols16 cv = cols16(p.epi, c + 16 * v);
#pragma GCC unroll 8
    for (int px = 0; px < PX; ++px)
      store16_avx512(p.epi, cv, q + px, c + 16 * v, _mm512_add_epi32(acc0[px][v], acc1[px][v]), k[v], 0);
  }
}

// All channels of PX pixels, in chunks of up to 16 * CVMAX channels.
template <int PX, int CVMAX>
void all_channels(const DwConvParams& p, int64_t q, const uint8_t* const* src, int64_t step) {
  using Fn = void (*)(const DwConvParams&, int64_t, const uint8_t* const*, int64_t, int64_t);
  static constexpr Fn kFns[4] = {pixels<PX, 1>, pixels<PX, CVMAX >= 2 ? 2 : 1>, pixels<PX, CVMAX >= 3 ? 3 : 1>,
                                 pixels<PX, CVMAX >= 4 ? 4 : 1>};
  for (int64_t c = 0; c < p.g.c; c += 16 * CVMAX) {
    const int64_t vecs = std::min<int64_t>(CVMAX, (p.g.c - c + 15) / 16);
    kFns[vecs - 1](p, q, src, step, c);
  }
}

// The problem seen as 16-channel pixels that are `group` = 16 / C real ones (taps and epilogue
// vectors repeated), for interior runs of a stride-1 conv with C dividing 16.
struct Grouped {
  int64_t group = 1;
  DwConvParams p;
  std::vector<int32_t> taps, ints;
  std::vector<float> floats;

  explicit Grouped(const DwConvParams& src) : p(src) {
    const ConvGeometry& g = src.g;
    if (g.sw != 1 || g.c >= 16 || 16 % g.c != 0) return;
    group = 16 / g.c;
    const int64_t ntaps = g.kh * g.kw;
    taps.resize(ntaps * 16);
    ints.resize(2 * 16);
    floats.resize(2 * 16);
    for (int64_t l = 0; l < 16; ++l) {
      const int64_t c = l % g.c;
      for (int64_t t = 0; t < ntaps; ++t) taps[t * 16 + l] = src.taps[t * src.cpad + c];
      ints[l] = src.epi.v.col_corr[c], ints[16 + l] = src.epi.v.w_zp[c];
      floats[l] = src.epi.v.bias[c], floats[16 + l] = src.epi.v.mult[c];
    }
    p.g.c = 16, p.cpad = 16, p.taps = taps.data();
    p.epi.v = {ints.data(), ints.data() + 16, floats.data(), floats.data() + 16};
    p.epi.ldc = 16;
  }

  // PX vectors of `group` pixels each from output pixel q (row-major), src as for pixels().
  template <int PX>
  void run(const DwConvParams& orig, int64_t q, const uint8_t* const* src) {
    static constexpr int64_t kBytes[] = {4, 1, 4};  // output element size per Epilogue
    p.epi.out = static_cast<char*>(orig.epi.out) + q * orig.g.c * kBytes[static_cast<int>(orig.epi.epi)];
    pixels<PX, 1>(p, 0, src, 16, 0);
  }
};

}  // namespace

void dwconv_avx512(const DwConvParams& p, int64_t q0, int64_t q1) {
  const ConvGeometry& g = p.g;
  const int64_t taps = g.kh * g.kw;
  std::vector<const uint8_t*> src(taps);
  std::vector<int64_t> rel(taps);  // tap t's input offset from tap 0's, inside the input
  for (int64_t t = 0; t < taps; ++t) rel[t] = ((t / g.kw) * g.dh * g.w + (t % g.kw) * g.dw) * g.c;
  Grouped grouped(p);
  // Output columns [ox_lo, ox_hi] have every tap inside the input's width.
  const int64_t ox_lo = (g.pw + g.sw - 1) / g.sw, right = g.w - 1 - (g.kw - 1) * g.dw + g.pw;
  const int64_t ox_hi = right < 0 ? -1 : right / g.sw;
  const int64_t step = g.sw * g.c;
  OutPixel o = out_pixel(g, q0);
  for (int64_t q = q0; q < q1;) {
    const int64_t iy = o.oy * g.sh - g.ph;
    // Pixels from ox on (same output row, within [q0, q1)) whose taps all lie inside the input.
    int64_t run = 0;
    if (iy >= 0 && iy + (g.kh - 1) * g.dh < g.h && o.ox >= ox_lo && o.ox <= ox_hi)
      run = std::min(ox_hi - o.ox + 1, q1 - q);
    if (run > 0) {
      const uint8_t* x0 = g.x + ((o.b * g.h + iy) * g.w + o.ox * g.sw - g.pw) * g.c;
      for (int64_t t = 0; t < taps; ++t) src[t] = x0 + rel[t];
    } else {
      for (int64_t t = 0; t < taps; ++t) {
        const int64_t off = tap_offset(g, o, t / g.kw, t % g.kw);
        src[t] = off < 0 ? nullptr : g.x + off;
      }
    }
    const int64_t gp = grouped.group;
    const int64_t done = gp > 1 && run >= 4 * gp ? 4 * gp : run >= 8 ? 8 : run >= 4 ? 4 : 1;
    if (gp > 1 && run >= 4 * gp) {
      grouped.run<4>(p, q, src.data());
    } else if (run >= 8) {
      all_channels<8, 1>(p, q, src.data(), step);
    } else if (run >= 4) {
      all_channels<4, 2>(p, q, src.data(), step);
    } else {
      all_channels<1, 4>(p, q, src.data(), step);
    }
    q += done;
    advance_pixel(g, o, done);
  }
}

}  // namespace fakequant
