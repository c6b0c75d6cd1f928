// int8_dwconv_ref.cpp — scalar reference depthwise int8 conv: the specification the vector kernels match.
#include "int8_dwconv.h"

namespace fakequant {

void dwconv_ref(const DwConvParams& p, int64_t q0, int64_t q1) {
  for (int64_t q = q0; q < q1; ++q) {
    const int64_t b = q / (p.oh * p.ow), oy = q / p.ow % p.oh, ox = q % p.ow;
    for (int64_t c = 0; c < p.c; ++c) {
      int32_t acc = 0;
      for (int64_t i = 0; i < p.kh; ++i)
        for (int64_t j = 0; j < p.kw; ++j) {
          const int64_t off = dw_tap_offset(p, b, oy, ox, i, j);
          acc += (off < 0 ? p.x_zp : p.x[off + c]) * p.taps[(i * p.kw + j) * p.cpad + c];
        }
      store_scalar(p.epi, q, c, acc, 0);
    }
  }
}

}  // namespace fakequant
