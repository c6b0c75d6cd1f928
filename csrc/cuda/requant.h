// requant.h — the int8 GEMM epilogue on one int32 product: zero-point correction and requantization.
#pragma once

#include <cmath>
#include <cstdint>

#include "../params.h"

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

// clamp(lrintf((acc + bias / s) * (s / out_scale)) + out_zp, lo, hi) with s = a_scale * w_scale.
FQ_HD inline uint8_t requantize_u8(int32_t acc, float s, float bias, float out_scale, int32_t out_zp, int32_t lo,
                                   int32_t hi) {
  const long long q = std::llrint((static_cast<float>(acc) + bias / s) * (s / out_scale)) + out_zp;
  return static_cast<uint8_t>(q < lo ? lo : q > hi ? hi : q);
}

// acc * s + bias, then max(., 0) with relu.
FQ_HD inline float requantize_float(int32_t acc, float s, float bias, bool relu) {
  const float y = static_cast<float>(acc) * s + bias;
  return relu && y < 0.f ? 0.f : y;
}

}  // namespace cuda
}  // namespace fakequant
