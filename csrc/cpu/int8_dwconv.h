// int8_dwconv.h — direct depthwise int8 conv on channels-last uint8 activations; torch-free.
//
// Params, the weight packing and per-ISA entry points; outputs go through the int8 GEMM's
// requantization epilogue.
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
  ConvGeometry g;                 // c input channels = c output channels
  const int32_t* taps = nullptr;  // pack_dw_weight's layout
  int64_t cpad = 0;
  // The epilogue, with output pixel (b, oy, ox) as row and channel as column; the weight zero
  // point is folded into the taps, so it runs without row sums.
  Int8GemmParams epi;
};

// Entry points: output pixels [q0, q1), numbered (b, oy, ox) row-major.
void dwconv_ref(const DwConvParams& p, int64_t q0, int64_t q1);
void dwconv_avx2(const DwConvParams& p, int64_t q0, int64_t q1);
void dwconv_avx512(const DwConvParams& p, int64_t q0, int64_t q1);

}  // namespace fakequant
