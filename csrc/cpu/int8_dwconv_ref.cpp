// int8_dwconv_ref.cpp — scalar reference depthwise int8 conv: the specification the vector kernels match.
#include "int8_dwconv.h"

namespace fakequant {

void dwconv_ref(const DwConvParams& p, int64_t q0, int64_t q1) {
  const ConvGeometry& g = p.g;
  for (int64_t q = q0; q < q1; ++q)
    for (int64_t c = 0; c < g.c; ++c) {
      int32_t acc = 0;
      for (int64_t i = 0; i < g.kh; ++i)
        for (int64_t j = 0; j < g.kw; ++j) {
          const int64_t off = conv_tap_offset(g, q, i, j);
          acc += (off < 0 ? g.x_zp : g.x[off + c]) * p.taps[(i * g.kw + j) * p.cpad + c];
        }
      store_scalar(p.epi, q, c, acc, 0);
    }
}

}  // namespace fakequant
