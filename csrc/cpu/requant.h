// requant.h — the int8 epilogue's requantization (fbgemm's ReQuantizeOutput), one definition for CPU and CUDA; torch-free.
#pragma once

#include <cmath>
#include <cstdint>

#include "../params.h"

namespace fakequant {

// |values| beyond this land on the clamp range's ends either way; clamping first keeps the
// float-to-int conversion in range (NaN goes to the low end, as fmax picks the number).
constexpr float kRequantClamp = 1024.f;

// One output channel's factors, rounded as fbgemm rounds them: a = x_scale * w_scale,
// mult = a / out_scale, bias_div = bias / a.
struct RequantScales {
  float bias_div, mult;
};

FQ_HD static inline RequantScales requant_scales(float x_scale, float w_scale, float bias, float out_scale) {
  const float a = x_scale * w_scale;
  return {bias / a, a / out_scale};
}

// clamp(round_half_even((acc + bias_div) * mult) + zp, lo, hi).
FQ_HD static inline uint8_t requant_u8(int32_t acc, float bias_div, float mult, int32_t zp, int32_t lo, int32_t hi) {
  float f = (static_cast<float>(acc) + bias_div) * mult;
  f = std::fmin(std::fmax(f, -kRequantClamp), kRequantClamp);
  int32_t q = static_cast<int32_t>(std::nearbyint(f)) + zp;
  q = q < lo ? lo : q;
  return static_cast<uint8_t>(q > hi ? hi : q);
}

}  // namespace fakequant
