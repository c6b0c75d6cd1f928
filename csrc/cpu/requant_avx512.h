// requant_avx512.h — the int8 GEMM epilogue on 16 columns at a time (AVX-512); mirrors store_scalar.
#pragma once

#include <immintrin.h>

#include "int8_gemm.h"

namespace fakequant {

inline __mmask16 lanes16(int64_t valid) {
  return valid >= 16 ? __mmask16(0xffff) : static_cast<__mmask16>((1u << valid) - 1);
}

// Row m, columns [n, n + 16) (lanes in `k` written): raw accumulators through the epilogue.
inline void store16_avx512(const Int8GemmParams& p, int64_t m, int64_t n, __m512i acc, __mmask16 k, int32_t rowsum) {
  __m512i c = _mm512_sub_epi32(acc, _mm512_loadu_si512(p.v.col_corr + n));
  if (p.w_zp_nonzero)
    c = _mm512_sub_epi32(c, _mm512_mullo_epi32(_mm512_loadu_si512(p.v.w_zp + n), _mm512_set1_epi32(rowsum)));
  const int64_t at = m * p.ldc + n;
  switch (p.epi) {
    case Epilogue::Int32: _mm512_mask_storeu_epi32(static_cast<int32_t*>(p.out) + at, k, c); return;
    case Epilogue::F32: {
      const __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(c), _mm512_loadu_ps(p.v.mult + n));
      _mm512_mask_storeu_ps(static_cast<float*>(p.out) + at, k, _mm512_add_ps(f, _mm512_loadu_ps(p.v.bias + n)));
      return;
    }
    case Epilogue::U8: {
      __m512 f = _mm512_add_ps(_mm512_cvtepi32_ps(c), _mm512_loadu_ps(p.v.bias + n));
      f = _mm512_mul_ps(f, _mm512_loadu_ps(p.v.mult + n));
      f = _mm512_min_ps(_mm512_max_ps(f, _mm512_set1_ps(-kRequantClamp)), _mm512_set1_ps(kRequantClamp));
      __m512i q = _mm512_cvt_roundps_epi32(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      q = _mm512_add_epi32(q, _mm512_set1_epi32(p.out_zp));
      q = _mm512_min_epi32(_mm512_max_epi32(q, _mm512_set1_epi32(p.out_min)), _mm512_set1_epi32(255));
      _mm512_mask_cvtusepi32_storeu_epi8(static_cast<uint8_t*>(p.out) + at, k, q);
      return;
    }
  }
}

}  // namespace fakequant
