// simd.h — lane masks for tails and byte stores shared by the vector kernels (AVX2 / AVX-512 files only).
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace fakequant {

// The first `valid` of 8 int32 lanes (valid may exceed 8).
static inline __m256i lanes8(int64_t valid) {
  const int v = valid >= 8 ? 8 : static_cast<int>(valid);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(v), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// Stores the low byte of each of the 8 int32 lanes of v (8 bytes).
static inline void store_low_bytes8(void* dst, __m256i v) {
  const __m256i pick = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,  //
                                        0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
  const __m256i b = _mm256_shuffle_epi8(v, pick);
  const __m128i lo = _mm256_castsi256_si128(b), hi = _mm256_extracti128_si256(b, 1);
  _mm_storel_epi64(static_cast<__m128i*>(dst), _mm_unpacklo_epi32(lo, hi));
}

#ifdef __AVX512F__
// The first `valid` of 16 lanes (valid may exceed 16).
static inline __mmask16 lanes16(int64_t valid) {
  return valid >= 16 ? __mmask16(0xffff) : static_cast<__mmask16>((1u << valid) - 1);
}
#endif

}  // namespace fakequant
