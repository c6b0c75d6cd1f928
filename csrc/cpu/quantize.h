// quantize.h — the one quantize primitive (scalar form) and the shared element loops; torch-free.
//
// q = clamp(round_half_even(x * (1/scale)) + zero_point, quant_min, quant_max), computed in float
// exactly as torch does. Every CPU kernel (fake quant, LSQ, fused observer, convert, int8) uses
// these functions for scalars and tails; vector kernels mirror them instruction for instruction;
// CUDA kernels call them directly (FQ_HD), compiled without FMA contraction (-fmad=false).
//
// Every function defined in a csrc/cpu header is static (internal linkage): each kernel file is
// compiled for its own ISA, and a shared inline copy could hand the scalar kernel AVX-512 code.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "../params.h"

namespace fakequant {

// Values of |q| at or above 2^63 do not fit torch's int64 cast (x86 gives INT64_MIN).
constexpr float kInt64Limit = 9.2233720368547758e18f;

FQ_HD static inline float inv_scale_of(float scale) { return 1.0f / scale; }

// Unclamped quantized value (float or double, as torch computes it for that input type).
template <class T>
FQ_HD static inline T quantize_unclamped(T x, float inv_scale, float zp, ZeroPointMode mode) {
  if (mode == ZeroPointMode::RoundThenAdd) return static_cast<T>(zp) + std::nearbyint(x * inv_scale);
  return static_cast<T>(std::nearbyint(static_cast<float>(zp + x * inv_scale)));  // lrintf
}

// torch's per-channel op casts to int64 before clamping: anything that does not fit (NaN, inf,
// |q| >= 2^63) becomes INT64_MIN, which then clamps to quant_min with a zero mask.
template <class T>
FQ_HD static inline T emulate_int64_cast(T qf) {
  return std::fabs(qf) < static_cast<T>(kInt64Limit) ? qf : -INFINITY;
}

template <class T>
FQ_HD static inline bool in_quant_range(T qf, float qmin, float qmax) { return qmin <= qf && qf <= qmax; }

// fmax first: a NaN qf clamps to quant_min, as std::fmax does in torch.
template <class T>
FQ_HD static inline T clamp_q(T qf, float qmin, float qmax) {
  return std::fmin(std::fmax(qf, static_cast<T>(qmin)), static_cast<T>(qmax));
}

FQ_HD static inline float dequantize(float q, float zp, float scale) { return (q - zp) * scale; }

// Element conversions: fp16/bf16 load to float exactly; stores round to nearest even as c10 does.
static inline float half_to_float(uint16_t h) {
  const uint32_t sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
  uint32_t bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (man << 13);
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (man << 13);
  } else if (man == 0) {
    bits = sign;
  } else {  // subnormal: normalise
    int e = -1;
    uint32_t m = man;
    do { ++e; m <<= 1; } while ((m & 0x400) == 0);
    bits = sign | ((112 - e) << 23) | ((m & 0x3ff) << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

static inline uint16_t float_to_half(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t ax = x & 0x7fffffffu;
  if (ax > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);  // NaN
  if (ax >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // overflow -> inf
  if (ax < 0x38800000u) {  // subnormal or zero: add then subtract 0.5 in float rounds half-even
    float a;
    std::memcpy(&a, &ax, 4);
    a += 0.5f;
    uint32_t b;
    std::memcpy(&b, &a, 4);
    return static_cast<uint16_t>(sign | (b - 0x3f000000u));
  }
  const uint32_t odd = (ax >> 13) & 1u;
  return static_cast<uint16_t>(sign | ((ax + 0xc8000fffu + odd) >> 13));
}

static inline float bf16_to_float(uint16_t b) {
  const uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

static inline uint16_t float_to_bf16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if (std::isnan(f)) return 0x7fc0;
  return static_cast<uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

static inline float load_as_float(const void* p, int64_t i, DType t) {
  switch (t) {
    case DType::F16: return half_to_float(static_cast<const uint16_t*>(p)[i]);
    case DType::BF16: return bf16_to_float(static_cast<const uint16_t*>(p)[i]);
    case DType::F64: return static_cast<float>(static_cast<const double*>(p)[i]);
    default: return static_cast<const float*>(p)[i];
  }
}

static inline void store_from_float(void* p, int64_t i, DType t, float v) {
  switch (t) {
    case DType::F16: static_cast<uint16_t*>(p)[i] = float_to_half(v); break;
    case DType::BF16: static_cast<uint16_t*>(p)[i] = float_to_bf16(v); break;
    case DType::F64: static_cast<double*>(p)[i] = v; break;
    default: static_cast<float*>(p)[i] = v;
  }
}

}  // namespace fakequant
