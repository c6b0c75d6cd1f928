// qparams.h — the project's one rule for choosing scale / zero point from a min and max (fbgemm's
// ChooseQuantizationParams as torch's fused observer calls it) and the moving-average update; torch-free.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "../params.h"

namespace fakequant {

struct QParams {
  float scale;
  int32_t zero_point;
};

// Scales below this (the smallest normal fp16) are raised to it, widening [min, max] around its centre.
constexpr float kSmallScale = 6.1e-5f;

// Every step in the precision torch uses (float, double where fbgemm widens). symmetric: zero point in
// the middle of [qmin, qmax] when min < 0 < max (fbgemm's preserve_sparsity). Requires qmin < qmax.
// A NaN min or max gives a NaN scale and zero point INT32_MIN, the value torch gets on x86.
FQ_HD static inline QParams choose_qparams(float min, float max, int32_t qmin, int32_t qmax, bool symmetric) {
  if (symmetric && min < 0 && max > 0) {
    const int32_t sym_min = -((qmax - qmin) / 2 + 1), sym_max = (qmax - qmin) / 2;
    const double widest = std::max(std::fabs(min / static_cast<float>(sym_min)),
                                   std::fabs(max / static_cast<float>(sym_max)));
    min = static_cast<float>(widest * sym_min);
    max = static_cast<float>(widest * sym_max);
  }
  min = std::min(min, 0.f);
  max = std::max(max, 0.f);
  const int32_t levels = qmax - qmin;
  float scale = static_cast<float>((static_cast<double>(max) - min) / levels);
  if (scale == 0.f || std::isinf(1.f / scale)) scale = 0.1f;
  if (scale < kSmallScale) {
    const float original = scale;
    scale = kSmallScale;
    if (min == 0.f) {
      max = kSmallScale * static_cast<float>(levels);
    } else if (max == 0.f) {
      min = -kSmallScale * static_cast<float>(levels);
    } else {
      const float amplifier = kSmallScale / original;
      min *= amplifier;
      max *= amplifier;
    }
  }
  // Of the two affine solutions take the one with the smaller rounding error.
  const double s = scale;
  const double from_min = qmin - min / s, from_max = qmax - max / s;
  const double err_min = std::abs(qmin) + std::abs(min / s), err_max = std::abs(qmax) + std::abs(max / s);
  double zp = err_min < err_max ? from_min : from_max;
  if (symmetric && min < 0 && max > 0) zp = static_cast<double>(qmin + qmax) / 2;
  int32_t nudged;
  if (zp < qmin) {
    nudged = qmin;
  } else if (zp > qmax) {
    nudged = qmax;
  } else if (std::isnan(zp)) {
    nudged = INT32_MIN;
  } else {
    nudged = static_cast<int32_t>(std::nearbyint(zp));
  }
  return {scale, nudged};
}

// One moving-average observer step; a running value still at +-inf takes the current one.
FQ_HD static inline float moving_average(float running, float current, float averaging_const) {
  return std::isinf(running) ? current : running + averaging_const * (current - running);
}

}  // namespace fakequant
