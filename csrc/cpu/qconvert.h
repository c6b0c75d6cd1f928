// qconvert.h — quantize (float -> uint8/int8) and dequantize (-> float32) kernels; torch-free.
//
// Over a Strided space, per tensor or per channel; quantize goes through the one quantize primitive.
#pragma once

#include <cstdint>

#include "../params.h"
#include "quantize.h"
#include "strided.h"

namespace fakequant {

struct QConvertParams {
  const void* x = nullptr;          // quantize: float input; dequantize: integer input
  void* y = nullptr;                // quantize: integer output; dequantize: float32 output
  DType dtype = DType::F32;         // quantize: the float input's type
  bool q_signed = false;            // integer side is int8 (else uint8)
  Strided it;
  int ch_dim = -1;                  // dim of `it` indexing channels; -1 for per tensor
  const float* scale = nullptr;     // one per channel
  const float* zero_point = nullptr;
  float quant_min = 0.f, quant_max = 255.f;
};

// q = clamp(round_half_even(x * (1/scale)) + zero_point): exactly the q fake quant dequantizes.
static inline int32_t quantize_element(const QConvertParams& p, int64_t xi, int64_t c) {
  const float inv = inv_scale_of(p.scale[c]), zp = p.zero_point[c];
  if (p.dtype == DType::F64) {
    const double qf = quantize_unclamped(static_cast<const double*>(p.x)[xi], inv, zp, ZeroPointMode::RoundThenAdd);
    return static_cast<int32_t>(clamp_q(qf, p.quant_min, p.quant_max));
  }
  const float qf = quantize_unclamped(load_as_float(p.x, xi, p.dtype), inv, zp, ZeroPointMode::RoundThenAdd);
  return static_cast<int32_t>(clamp_q(qf, p.quant_min, p.quant_max));
}

static inline float load_q(const void* q, int64_t i, bool q_signed) {
  return q_signed ? static_cast<const int8_t*>(q)[i] : static_cast<const uint8_t*>(q)[i];
}

static inline void store_q(void* q, int64_t i, bool q_signed, int32_t v) {
  if (q_signed) {
    static_cast<int8_t*>(q)[i] = static_cast<int8_t>(v);
  } else {
    static_cast<uint8_t*>(q)[i] = static_cast<uint8_t>(v);
  }
}

// A row of n elements through the scalar element functions (reference kernel, odd strides, tails).
static inline void quantize_row_scalar(const QConvertParams& p, const int64_t* idx, int64_t in_off, int64_t out_off,
                                int64_t n) {
  const int last = p.it.ndim - 1;
  const int64_t c0 = p.ch_dim < 0 ? 0 : idx[p.ch_dim], dc = p.ch_dim == last ? 1 : 0;
  for (int64_t i = 0; i < n; ++i)
    store_q(p.y, out_off + i * p.it.out_stride[last], p.q_signed,
            quantize_element(p, in_off + i * p.it.in_stride[last], c0 + i * dc));
}

static inline void dequantize_row_scalar(const QConvertParams& p, const int64_t* idx, int64_t in_off, int64_t out_off,
                                  int64_t n) {
  const int last = p.it.ndim - 1;
  const int64_t c0 = p.ch_dim < 0 ? 0 : idx[p.ch_dim], dc = p.ch_dim == last ? 1 : 0;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = c0 + i * dc;
    static_cast<float*>(p.y)[out_off + i * p.it.out_stride[last]] =
        dequantize(load_q(p.x, in_off + i * p.it.in_stride[last], p.q_signed), p.zero_point[c], p.scale[c]);
  }
}

// Rows the vector kernels take: unit strides, float32, one channel per row.
static inline bool qconvert_vector_rows(const QConvertParams& p) {
  const int last = p.it.ndim - 1;
  return p.it.in_stride[last] == 1 && p.it.out_stride[last] == 1 && p.dtype == DType::F32 && p.ch_dim != last;
}

void quantize_ref(const QConvertParams& p, int64_t begin, int64_t end);
void quantize_avx2(const QConvertParams& p, int64_t begin, int64_t end);
void quantize_avx512(const QConvertParams& p, int64_t begin, int64_t end);

void dequantize_ref(const QConvertParams& p, int64_t begin, int64_t end);
void dequantize_avx2(const QConvertParams& p, int64_t begin, int64_t end);
void dequantize_avx512(const QConvertParams& p, int64_t begin, int64_t end);

}  // namespace fakequant
