// int8_dwconv.h — direct depthwise int8 conv on channels-last uint8 activations, with the int8
// GEMM's requantization epilogue; params, the scalar pieces and per-ISA entry points; torch-free.
#pragma once

#include <cstdint>

#include "int8_gemm.h"

namespace fakequant {

// Taps of channel c hold w - w_zp[c] as int32, laid out [tap][cpad] (cpad: channels rounded up
// to 16, zeros past c), so that sum_taps x * tap - x_zp * sum_taps tap is the exact
// sum (x - x_zp) * (w - w_zp), padding reading as x_zp.
void pack_dw_weight(const int8_t* w, const int32_t* w_zp, int64_t channels, int64_t taps, int64_t cpad, int32_t* out,
                    int32_t* colsum);

struct DwConvParams {
  const uint8_t* x = nullptr;   // [batch, h, w, c], channels innermost, contiguous
  int64_t batch = 0, h = 0, w = 0, c = 0, oh = 0, ow = 0;
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1;
  const int32_t* taps = nullptr;  // pack_dw_weight's layout
  int64_t cpad = 0;
  int32_t x_zp = 0;
  // The epilogue, with output pixel (b, oy, ox) as row and channel as column; the weight zero
  // point is folded into the taps, so it runs without row sums.
  Int8GemmParams epi;
};

// Input element offset of tap (i, j) for output pixel (oy, ox) of image b, or -1 in the padding.
inline int64_t dw_tap_offset(const DwConvParams& p, int64_t b, int64_t oy, int64_t ox, int64_t i, int64_t j) {
  const int64_t iy = oy * p.sh - p.ph + i * p.dh, ix = ox * p.sw - p.pw + j * p.dw;
  if (iy < 0 || iy >= p.h || ix < 0 || ix >= p.w) return -1;
  return ((b * p.h + iy) * p.w + ix) * p.c;
}

// Entry points: output pixels [q0, q1), numbered (b, oy, ox) row-major.
void dwconv_ref(const DwConvParams& p, int64_t q0, int64_t q1);
void dwconv_avx2(const DwConvParams& p, int64_t q0, int64_t q1);
void dwconv_avx512(const DwConvParams& p, int64_t q0, int64_t q1);

}  // namespace fakequant
