// conv_geometry.h — a 2-D conv's channels-last uint8 input and window geometry; torch-free.
//
// Shared by the depthwise kernel and the GEMM's im2col rows.
#pragma once

#include <cstdint>

namespace fakequant {

struct ConvGeometry {
  const uint8_t* x = nullptr;  // [batch, h, w, c], channels innermost, contiguous
  int64_t batch = 0, h = 0, w = 0, c = 0, oh = 0, ow = 0;
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1;
  int32_t x_zp = 0;            // padding reads as this (the real value 0)
};

// Element offset in x of pixel (iy, ix) under tap (i, j) of output pixel q = (b, oy, ox) numbered
// row-major, or -1 where the tap falls in the padding.
static inline int64_t conv_tap_offset(const ConvGeometry& g, int64_t q, int64_t i, int64_t j) {
  const int64_t b = q / (g.oh * g.ow), oy = q / g.ow % g.oh, ox = q % g.ow;
  const int64_t iy = oy * g.sh - g.ph + i * g.dh, ix = ox * g.sw - g.pw + j * g.dw;
  if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) return -1;
  return ((b * g.h + iy) * g.w + ix) * g.c;
}

}  // namespace fakequant
