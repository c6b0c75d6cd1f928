// int8_gemm_vnni.cpp — AVX-512 VNNI int8 GEMM: vpdpbusd on register tiles of up to 6 x 64.
//
// The epilogue is applied straight from the accumulators.
#include <immintrin.h>

#include <vector>

#include "requant_avx512.h"

namespace fakequant {
namespace {

constexpr int kMR = 6;
constexpr int64_t kABytes = 256 * 1024;  // activation bytes per pass over the weight blocks

inline int32_t load32(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// Rows [m, m + R) x columns [n, n + ncols) with ncols <= 16 * NV: a is the first row (stride rs),
// b the weight block, both read for `groups` k-groups.
template <int R, int NV>
void tile(const Int8GemmParams& p, const uint8_t* a, int64_t rs, const int8_t* b, int64_t groups, int64_t m,
          int64_t n, int64_t ncols, const int32_t* rowsum) {
  __m512i acc[R][NV];
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) acc[r][j] = _mm512_setzero_si512();
  const uint8_t* rows[R];
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r) rows[r] = a + r * rs;
  for (int64_t g = 0; g < groups; ++g) {
    __m512i bv[NV];
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) bv[j] = _mm512_loadu_si512(b + g * kGroupBytes + 64 * j);
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
      const __m512i av = _mm512_set1_epi32(load32(rows[r] + 4 * g));
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) acc[r][j] = _mm512_dpbusd_epi32(acc[r][j], av, bv[j]);
    }
  }
#pragma GCC unroll 4
  for (int j = 0; j < NV; ++j) {
    const int64_t c = 16 * j;
    if (c >= ncols) break;
    const Cols16 cv = cols16(p, n + c);
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r)
      store16_avx512(p, cv, m + r, n + c, acc[r][j], lanes16(ncols - c), rowsum ? rowsum[r] : 0);
  }
}

using TileFn = void (*)(const Int8GemmParams&, const uint8_t*, int64_t, const int8_t*, int64_t, int64_t, int64_t,
                        int64_t, const int32_t*);
#define FQ_TILE_ROW(R) {tile<R, 1>, tile<R, 2>, tile<R, 3>, tile<R, 4>}
constexpr TileFn kTiles[kMR][4] = {FQ_TILE_ROW(1), FQ_TILE_ROW(2), FQ_TILE_ROW(3),
                                   FQ_TILE_ROW(4), FQ_TILE_ROW(5), FQ_TILE_ROW(6)};
#undef FQ_TILE_ROW

}  // namespace

void int8_gemm_vnni(const Int8GemmParams& p, int64_t m0, int64_t m1, int64_t nb0, int64_t nb1) {
  const int64_t k = p.b.k, kp = round_up(k, 4), groups = kp / 4, kpb = packed_k(k);
  const int64_t mc = std::max<int64_t>(kMR, kABytes / std::max<int64_t>(kp, 1) / kMR * kMR);
  thread_local std::vector<uint8_t> buf;
  thread_local std::vector<int32_t> sums;
  for (int64_t mb = m0; mb < m1; mb += mc) {
    const int64_t rows = std::min(mc, m1 - mb);
    const ARows a = load_a_block(p, mb, rows, kp, buf, sums);
    for (int64_t nb = nb0; nb < nb1; ++nb) {
      const int64_t n = nb * kNB, ncols = std::min(kNB, p.b.n - n);
      const int8_t* b = p.b.data + nb * kpb * kNB;
      for (int64_t r = 0; r < rows; r += kMR) {
        const int64_t R = std::min<int64_t>(kMR, rows - r);
        kTiles[R - 1][(ncols + 15) / 16 - 1](p, a.a + r * a.rs, a.rs, b, groups, mb + r, n, ncols,
                                             p.w_zp_nonzero ? sums.data() + r : nullptr);
      }
    }
  }
}

}  // namespace fakequant
