// requant_avx512.h — the int8 GEMM epilogue on 16 columns at a time (AVX-512); mirrors store_scalar.
#pragma once

#include <immintrin.h>

#include "int8_gemm.h"
#include "simd.h"

namespace fakequant {

// The epilogue's per-column vectors for columns [n, n + 16), loaded once for all rows of a tile.
struct Cols16 {
  __m512i corr, w_zp;
  __m512 bias, mult;
};

static inline Cols16 cols16(const Int8GemmParams& p, int64_t n) {
  return {_mm512_loadu_si512(p.v.col_corr + n), _mm512_loadu_si512(p.v.w_zp + n), _mm512_loadu_ps(p.v.bias + n),
          _mm512_loadu_ps(p.v.mult + n)};
}

// Row m, columns [n, n + 16) (lanes in `k` written): raw accumulators through the epilogue.
static inline void store16_avx512(const Int8GemmParams& p, const Cols16& cv, int64_t m, int64_t n, __m512i acc, __mmask16 k,
                           int32_t rowsum) {
  __m512i c = _mm512_sub_epi32(acc, cv.corr);
  if (p.w_zp_nonzero) c = _mm512_sub_epi32(c, _mm512_mullo_epi32(cv.w_zp, _mm512_set1_epi32(rowsum)));
  const int64_t at = m * p.ldc + n;
  switch (p.epi) {
    case Epilogue::Int32: _mm512_mask_storeu_epi32(static_cast<int32_t*>(p.out) + at, k, c); return;
    case Epilogue::F32: {
      const __m512 f = _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(c), cv.mult), cv.bias);
      _mm512_mask_storeu_ps(static_cast<float*>(p.out) + at, k, f);
      return;
    }
    case Epilogue::U8: {
      __m512 f = _mm512_mul_ps(_mm512_add_ps(_mm512_cvtepi32_ps(c), cv.bias), cv.mult);
      // max(f, -clamp) returns its second operand for a NaN f, as fmax does.
      f = _mm512_min_ps(_mm512_max_ps(f, _mm512_set1_ps(-kRequantClamp)), _mm512_set1_ps(kRequantClamp));
      __m512i q = _mm512_cvt_roundps_epi32(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      q = _mm512_max_epi32(_mm512_add_epi32(q, _mm512_set1_epi32(p.out_zp)), _mm512_set1_epi32(p.out_min));
      q = _mm512_min_epi32(q, _mm512_set1_epi32(p.out_max));
      _mm512_mask_cvtepi32_storeu_epi8(static_cast<uint8_t*>(p.out) + at, k, q);
      return;
    }
  }
}

}  // namespace fakequant
