// choose_qparams.h — the fused observer's moving average and qparams rule (fbgemm's), host and device.
#pragma once

#include <cmath>
#include <cstdint>

#include "../params.h"

namespace fakequant {
namespace cuda {

// m = isinf(m) ? cur : m + c * (cur - m), without contraction into an FMA.
FQ_HD inline float moving_average(float m, float cur, float c) { return std::isinf(m) ? cur : m + c * (cur - m); }

struct QParams {
  float scale;
  int32_t zero_point;
};

// fbgemm's ChooseQuantizationParams with preserve_sparsity = symmetric, as torch's fused op uses it.
FQ_HD inline QParams choose_qparams(float min, float max, int32_t qmin, int32_t qmax, bool symmetric) {
  constexpr float kSmallScale = 6.1e-5f;
  const bool sym = symmetric && min < 0 && max > 0;
  if (sym) {
    const int sqmin = -((qmax - qmin) / 2 + 1), sqmax = (qmax - qmin) / 2;
    const float a = std::fabs(min / sqmin), b = std::fabs(max / sqmax);
    const double ms = a < b ? b : a;
    min = static_cast<float>(ms * sqmin);
    max = static_cast<float>(ms * sqmax);
  }
  min = 0.f < min ? 0.f : min;  // std::min(min, 0.f), std::max(max, 0.f) as fbgemm writes them
  max = max < 0.f ? 0.f : max;
  float scale = static_cast<float>((static_cast<double>(max) - min) / (qmax - qmin));
  if (scale == 0.f || std::isinf(1.f / scale)) scale = 0.1f;
  if (scale < kSmallScale) {  // widen [min, max] around its centre to the smallest scale
    const float org = scale;
    scale = kSmallScale;
    if (min == 0.f) {
      max = kSmallScale * (qmax - qmin);
    } else if (max == 0.f) {
      min = -kSmallScale * (qmax - qmin);
    } else {
      const float amplifier = kSmallScale / org;
      min *= amplifier;
      max *= amplifier;
    }
  }
  const double s = scale;
  const double from_min = qmin - min / s, from_max = qmax - max / s;
  const double err_min = std::fabs(static_cast<double>(qmin)) + std::fabs(min / s);
  const double err_max = std::fabs(static_cast<double>(qmax)) + std::fabs(max / s);
  double zp = err_min < err_max ? from_min : from_max;
  if (sym) zp = static_cast<double>(qmin + qmax) / 2;
  const int32_t nudged = zp < qmin ? qmin : zp > qmax ? qmax : static_cast<int32_t>(std::nearbyint(zp));
  return {scale, nudged};
}

}  // namespace cuda
}  // namespace fakequant
