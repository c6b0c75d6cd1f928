// simd_avx512.h — 16-lane loads/stores (masked and full) of fp32/fp16/bf16 as float; *_avx512.cpp only.
#pragma once

#include <immintrin.h>

#include "quantize.h"
#include "simd.h"

namespace fakequant {

template <DType T>
static inline __m512 load16(const void* p, __mmask16 k) {
  if constexpr (T == DType::F32) {
    return _mm512_maskz_loadu_ps(k, p);
  } else {
    const __m256i h = _mm256_maskz_loadu_epi16(k, p);
    if constexpr (T == DType::F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
}

// fp16 / bf16 bits of 16 floats; bf16 rounds to nearest even with NaN -> 0x7fc0 (c10's rule).
template <DType T>
static inline __m256i to_16bit(__m512 v) {
  if constexpr (T == DType::F16) {
    return _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  } else {
    const __m512i u = _mm512_castps_si512(v);
    const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)), odd), 16);
    r = _mm512_mask_mov_epi32(r, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), _mm512_set1_epi32(0x7fc0));
    return _mm512_cvtepi32_epi16(r);
  }
}

template <DType T>
static inline void store16(void* p, __mmask16 k, __m512 v) {
  if constexpr (T == DType::F32) {
    _mm512_mask_storeu_ps(p, k, v);
  } else {
    _mm256_mask_storeu_epi16(p, k, to_16bit<T>(v));
  }
}

template <DType T>
static inline __m512 load16(const void* p) {
  if constexpr (T == DType::F32) {
    return _mm512_loadu_ps(p);
  } else {
    const __m256i h = _mm256_loadu_si256(static_cast<const __m256i*>(p));
    if constexpr (T == DType::F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
}

template <DType T>
static inline void store16(void* p, __m512 v) {
  if constexpr (T == DType::F32) {
    _mm512_storeu_ps(p, v);
  } else {
    _mm256_storeu_si256(static_cast<__m256i*>(p), to_16bit<T>(v));
  }
}

// torch's int64 cast of a rounded value: NaN, inf and |q| >= 2^63 become -inf (then quant_min).
static inline __m512 int64_cast16(__m512 q) {
  const __mmask16 fits = _mm512_cmp_ps_mask(_mm512_abs_ps(q), _mm512_set1_ps(kInt64Limit), _CMP_LT_OQ);
  return _mm512_mask_blend_ps(fits, _mm512_set1_ps(-INFINITY), q);
}

}  // namespace fakequant
