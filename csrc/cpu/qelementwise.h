// qelementwise.h — elementwise ops on uint8 quantized tensors (add, mul, requantize); torch-free.
//
// Each operand is dequantized to float, combined in float and quantized with the one primitive —
// the float math of a fake-quant model, so results match it bit for bit.
#pragma once

#include <cstdint>

#include "quantize.h"

namespace fakequant {

enum class QOp : int32_t { Add = 0, Mul = 1, Requant = 2 };

struct QElementwiseParams {
  const uint8_t* a = nullptr;  // contiguous operands and output in one layout; b unused by Requant
  const uint8_t* b = nullptr;
  uint8_t* y = nullptr;
  float sa = 1.f, za = 0.f, sb = 1.f, zb = 0.f;  // operands' scale and zero point
  float sy = 1.f, zy = 0.f;                      // output's
  float quant_min = 0.f, quant_max = 255.f;      // output clamp (quant_min = zy for a fused ReLU)
  QOp op = QOp::Add;
};

FQ_HD static inline uint8_t qelementwise_element(const QElementwiseParams& p, int64_t i) {
  float f = dequantize(p.a[i], p.za, p.sa);
  if (p.op != QOp::Requant) {
    const float fb = dequantize(p.b[i], p.zb, p.sb);
    f = p.op == QOp::Add ? f + fb : f * fb;
  }
  const float qf = quantize_unclamped(f, inv_scale_of(p.sy), p.zy, ZeroPointMode::RoundThenAdd);
  return static_cast<uint8_t>(clamp_q(qf, p.quant_min, p.quant_max));
}

// Entry points: elements [begin, end).
void qelementwise_ref(const QElementwiseParams& p, int64_t begin, int64_t end);
void qelementwise_avx2(const QElementwiseParams& p, int64_t begin, int64_t end);
void qelementwise_avx512(const QElementwiseParams& p, int64_t begin, int64_t end);

}  // namespace fakequant
