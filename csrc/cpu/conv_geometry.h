// conv_geometry.h — a 2-D conv's channels-last uint8 input and window geometry; torch-free.
//
// Shared by the depthwise kernels (CPU and CUDA) and the GEMM's im2col rows.
#pragma once

#include <cstdint>

#include "../params.h"

namespace fakequant {

struct ConvGeometry {
  const uint8_t* x = nullptr;  // [batch, h, w, c], channels innermost, contiguous
  int64_t batch = 0, h = 0, w = 0, c = 0, oh = 0, ow = 0;
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1;
  int32_t x_zp = 0;            // padding reads as this (the real value 0)
};

// Output pixel q = (b, oy, ox), numbered row-major.
struct OutPixel {
  int64_t b, oy, ox;
};

FQ_HD static inline OutPixel out_pixel(const ConvGeometry& g, int64_t q) {
  return {q / (g.oh * g.ow), q / g.ow % g.oh, q % g.ow};
}

// The pixel `steps` further on; ox + steps must not pass the end of the output row.
FQ_HD static inline void advance_pixel(const ConvGeometry& g, OutPixel& o, int64_t steps = 1) {
  o.ox += steps;
  if (o.ox == g.ow) {
    o.ox = 0;
    if (++o.oy == g.oh) o.oy = 0, ++o.b;
  }
}

// Element offset in x of pixel (iy, ix) under tap (i, j) of output pixel o, or -1 where the tap
// falls in the padding.
FQ_HD static inline int64_t tap_offset(const ConvGeometry& g, const OutPixel& o, int64_t i, int64_t j) {
  const int64_t iy = o.oy * g.sh - g.ph + i * g.dh, ix = o.ox * g.sw - g.pw + j * g.dw;
  if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) return -1;
  return ((o.b * g.h + iy) * g.w + ix) * g.c;
}

FQ_HD static inline int64_t conv_tap_offset(const ConvGeometry& g, int64_t q, int64_t i, int64_t j) {
  return tap_offset(g, out_pixel(g, q), i, j);
}

}  // namespace fakequant
