// requant_avx2.h — the int8 GEMM epilogue on 8 columns at a time (AVX2); mirrors store_scalar.
#pragma once

#include <immintrin.h>

#include "int8_gemm.h"
#include "simd.h"

namespace fakequant {

// Row m, columns [n, n + valid) with valid in 1..8: raw accumulators through the epilogue.
static inline void store8_avx2(const Int8GemmParams& p, int64_t m, int64_t n, __m256i acc, int valid, int32_t rowsum) {
  __m256i c = _mm256_sub_epi32(acc, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p.v.col_corr + n)));
  if (p.w_zp_nonzero) {
    const __m256i zw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p.v.w_zp + n));
    c = _mm256_sub_epi32(c, _mm256_mullo_epi32(zw, _mm256_set1_epi32(rowsum)));
  }
  const int64_t at = m * p.ldc + n;
  const __m256i lanes = lanes8(valid);
  switch (p.epi) {
    case Epilogue::Int32: _mm256_maskstore_epi32(static_cast<int32_t*>(p.out) + at, lanes, c); return;
    case Epilogue::F32: {
      const __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(c), _mm256_loadu_ps(p.v.mult + n));
      _mm256_maskstore_ps(static_cast<float*>(p.out) + at, lanes, _mm256_add_ps(f, _mm256_loadu_ps(p.v.bias + n)));
      return;
    }
    case Epilogue::U8: {
      __m256 f = _mm256_add_ps(_mm256_cvtepi32_ps(c), _mm256_loadu_ps(p.v.bias + n));
      f = _mm256_mul_ps(f, _mm256_loadu_ps(p.v.mult + n));
      // max(f, -clamp) returns its second operand for a NaN f, as fmax does.
      f = _mm256_min_ps(_mm256_max_ps(f, _mm256_set1_ps(-kRequantClamp)), _mm256_set1_ps(kRequantClamp));
      __m256i q = _mm256_cvtps_epi32(_mm256_round_ps(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
      q = _mm256_add_epi32(q, _mm256_set1_epi32(p.out_zp));
      q = _mm256_min_epi32(_mm256_max_epi32(q, _mm256_set1_epi32(p.out_min)), _mm256_set1_epi32(p.out_max));
      const __m128i w16 = _mm_packus_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
      const __m128i b8 = _mm_packus_epi16(w16, w16);
      uint8_t* dst = static_cast<uint8_t*>(p.out) + at;
      if (valid == 8) {
        _mm_storel_epi64(reinterpret_cast<__m128i*>(dst), b8);
      } else {
        alignas(16) uint8_t tmp[16];
        _mm_store_si128(reinterpret_cast<__m128i*>(tmp), b8);
        std::memcpy(dst, tmp, static_cast<size_t>(valid));
      }
      return;
    }
  }
}

}  // namespace fakequant
