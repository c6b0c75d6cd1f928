// int8_gemm_avx2.cpp — AVX2 int8 GEMM: vpmaddubsw where exact, int16 widening + vpmaddwd otherwise.
//
// vpmaddubsw (+ vpmaddwd) runs where no int16 pair sum can saturate; the epilogue is applied
// straight from the accumulators.
#include <immintrin.h>

#include <vector>

#include "requant_avx2.h"

namespace fakequant {
namespace {

constexpr int kMR = 4;                   // vpmaddubsw tiles: 4 rows x 16 columns
constexpr int kMRWide = 2;               // widening tiles: 2 rows x 16 columns
constexpr int64_t kABytes = 128 * 1024;  // activation bytes per pass over the weight blocks

inline int32_t load32(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// vpmaddubsw adds two u8 x s8 products in int16 with saturation; exact when neither extreme of
// 2 * a * w leaves [-32768, 32767] for a in [0, amax] and w in [wmin, wmax].
bool maddubs_exact(const PackedB& b, int amax) {
  const int64_t pos = std::max(b.wmax, 0), neg = std::max(-b.wmin, 0);
  return 2 * amax * pos <= 32767 && 2 * amax * neg <= 32768;
}

// Rows [m, m + R) x columns [n, n + ncols), ncols <= 8 * NV; b points at the tile's first column.
template <int R, int NV>
void tile_maddubs(const Int8GemmParams& p, const uint8_t* a, int64_t rs, const int8_t* b, int64_t groups,
                  int64_t m, int64_t n, int64_t ncols, const int32_t* rowsum) {
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i acc[R][NV];
  #pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
    #pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) acc[r][j] = _mm256_setzero_si256();
  for (int64_t g = 0; g < groups; ++g) {
    __m256i bv[NV];
    #pragma GCC unroll 4
    for (int j = 0; j < NV; ++j)
      bv[j] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + g * kGroupBytes + 32 * j));
    #pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const __m256i av = _mm256_set1_epi32(load32(a + r * rs + 4 * g));
      #pragma GCC unroll 4
      for (int j = 0; j < NV; ++j)
        acc[r][j] = _mm256_add_epi32(acc[r][j], _mm256_madd_epi16(_mm256_maddubs_epi16(av, bv[j]), ones));
    }
  }
  #pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
    #pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) {
      const int64_t c = 8 * j;
      if (c < ncols) store8_avx2(p, m + r, n + c, acc[r][j], static_cast<int>(std::min<int64_t>(8, ncols - c)),
                                 rowsum ? rowsum[r] : 0);
    }
}

// Same tile through int16: each accumulator holds 4 columns x 2 partial sums (k 0-1, k 2-3), as
// vpmaddwd of sign-extended weights [col][4 k] and the row's 4 activations repeated.
template <int R, int NQ>
void tile_widen(const Int8GemmParams& p, const uint8_t* a, int64_t rs, const int8_t* b, int64_t groups, int64_t m,
                int64_t n, int64_t ncols, const int32_t* rowsum) {
  __m256i acc[R][NQ];
  #pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
    #pragma GCC unroll 4
    for (int q = 0; q < NQ; ++q) acc[r][q] = _mm256_setzero_si256();
  for (int64_t g = 0; g < groups; ++g) {
    __m256i bw[NQ];
    #pragma GCC unroll 4
    for (int q = 0; q < NQ; ++q)
      bw[q] = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + g * kGroupBytes + 16 * q)));
    #pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const __m128i a16 = _mm_cvtepu8_epi16(_mm_cvtsi32_si128(load32(a + r * rs + 4 * g)));
      const __m256i av = _mm256_broadcastq_epi64(a16);
      #pragma GCC unroll 4
      for (int q = 0; q < NQ; ++q) acc[r][q] = _mm256_add_epi32(acc[r][q], _mm256_madd_epi16(bw[q], av));
    }
  }
  #pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
    #pragma GCC unroll 4
    for (int q = 0; q < NQ; q += 2) {
      // hadd gives [c0 c1 c4 c5 | c2 c3 c6 c7]; the permute puts the 8 columns in order.
      const __m256i hi = q + 1 < NQ ? acc[r][q + 1] : _mm256_setzero_si256();
      const __m256i s = _mm256_permute4x64_epi64(_mm256_hadd_epi32(acc[r][q], hi), 0xD8);
      const int64_t c = 4 * q;
      if (c < ncols) store8_avx2(p, m + r, n + c, s, static_cast<int>(std::min<int64_t>(8, ncols - c)),
                                 rowsum ? rowsum[r] : 0);
    }
}

using TileFn = void (*)(const Int8GemmParams&, const uint8_t*, int64_t, const int8_t*, int64_t, int64_t, int64_t,
                        int64_t, const int32_t*);
constexpr TileFn kMaddubs[kMR][2] = {{tile_maddubs<1, 1>, tile_maddubs<1, 2>},
                                     {tile_maddubs<2, 1>, tile_maddubs<2, 2>},
                                     {tile_maddubs<3, 1>, tile_maddubs<3, 2>},
                                     {tile_maddubs<4, 1>, tile_maddubs<4, 2>}};
constexpr TileFn kWiden[kMRWide][4] = {{tile_widen<1, 1>, tile_widen<1, 2>, tile_widen<1, 3>, tile_widen<1, 4>},
                                       {tile_widen<2, 1>, tile_widen<2, 2>, tile_widen<2, 3>, tile_widen<2, 4>}};

}  // namespace

void int8_gemm_avx2(const Int8GemmParams& p, int64_t m0, int64_t m1, int64_t nb0, int64_t nb1) {
  const int64_t k = p.b.k, kp = round_up(k, 4), groups = kp / 4, kpb = packed_k(k);
  const int64_t mc = std::max<int64_t>(kMR, kABytes / std::max<int64_t>(kp, 1) / kMR * kMR);
  thread_local std::vector<uint8_t> buf;
  thread_local std::vector<int32_t> sums;
  for (int64_t mb = m0; mb < m1; mb += mc) {
    const int64_t rows = std::min(mc, m1 - mb);
    const ARows a = load_a_block(p, mb, rows, kp, buf, sums);
    const bool fast = maddubs_exact(p.b, a_max(a, rows, k));
    const int64_t mr = fast ? kMR : kMRWide;
    for (int64_t nb = nb0; nb < nb1; ++nb) {
      const int64_t n0 = nb * kNB, ncols = std::min(kNB, p.b.n - n0);
      for (int64_t c = 0; c < ncols; c += 16) {
        const int64_t nc = std::min<int64_t>(16, ncols - c);
        const int8_t* b = p.b.data + nb * kpb * kNB + 4 * c;
        for (int64_t r = 0; r < rows; r += mr) {
          const int64_t R = std::min(mr, rows - r);
          const TileFn fn = fast ? kMaddubs[R - 1][(nc + 7) / 8 - 1] : kWiden[R - 1][(nc + 3) / 4 - 1];
          fn(p, a.a + r * a.rs, a.rs, b, groups, mb + r, n0 + c, nc, p.w_zp_nonzero ? sums.data() + r : nullptr);
        }
      }
    }
  }
}

}  // namespace fakequant
