// requant.h — the CUDA int8 epilogue on one int32 product: zero-point correction, then the shared requantization.
#pragma once

#include <cstdint>

#include "../cpu/requant.h"

namespace fakequant {
namespace cuda {

// sum_k (a - za) * (w - zw) from raw = sum_k a * w and the row sums of a and w, in wrapping int32.
FQ_HD inline int32_t zero_point_corrected(int32_t raw, int32_t a_sum, int32_t w_sum, int32_t a_zp, int32_t w_zp,
                                          int64_t k) {
  const uint32_t r = static_cast<uint32_t>(raw) - static_cast<uint32_t>(w_zp) * static_cast<uint32_t>(a_sum) -
                     static_cast<uint32_t>(a_zp) * static_cast<uint32_t>(w_sum) +
                     static_cast<uint32_t>(k) * static_cast<uint32_t>(a_zp) * static_cast<uint32_t>(w_zp);
  return static_cast<int32_t>(r);
}

// The uint8 epilogue of output channel c: requant_u8 with the CPU's per-channel factors.
FQ_HD inline uint8_t requantize_channel(int32_t acc, float x_scale, float w_scale, float bias, float out_scale,
                                        int32_t out_zp, int32_t lo, int32_t hi) {
  const RequantScales r = requant_scales(x_scale, w_scale, bias, out_scale);
  return requant_u8(acc, r.bias_div, r.mult, out_zp, lo, hi);
}

// acc * (x_scale * w_scale) + bias (fbgemm's ReQuantizeForFloat, as the CPU epilogue).
FQ_HD inline float requantize_float(int32_t acc, float x_scale, float w_scale, float bias) {
  return static_cast<float>(acc) * (x_scale * w_scale) + bias;
}

}  // namespace cuda
}  // namespace fakequant
