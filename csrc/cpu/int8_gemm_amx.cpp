// int8_gemm_amx.cpp — AMX int8 GEMM: _tile_dpbusd on output tiles of up to 32 x 32 int32.
//
// 2 x 2 tiles of 16 x 16 int32, k in steps of 64; the epilogue runs on a tile store with the
// AVX-512 code.
#include <immintrin.h>

#include <vector>

#include "requant_avx512.h"

namespace fakequant {
namespace {

constexpr int64_t kABytes = 256 * 1024;  // activation bytes per pass over the weight blocks
constexpr int64_t kTileRows = 16;
constexpr int64_t kTileK = 64;           // bytes of k per A tile row = 16 k-groups per B tile

// ldtilecfg's 64-byte operand, palette 1. Tiles 0-3: C (16 rows x 16 int32); 4-5: A (16 rows x
// 64 u8); 6-7: B (16 k-groups x 16 columns x 4 s8). Every tile is 16 rows of 64 bytes.
struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// One activation tile row-group: 16 rows starting at a, row stride rs.
struct ATile {
  const uint8_t* a;
  int64_t rs;
};

// C (MT * 16 rows x 32 columns, row stride 32) = A rows x the two 16-column panels at b, over kt
// k-tiles. b's panel rows (k-groups) are kGroupBytes apart; the second panel is 64 bytes on.
template <int MT>
void tile_product(const ATile* at, const int8_t* b, int64_t kt, int32_t* c) {
  _tile_zero(0);
  _tile_zero(1);
  if constexpr (MT == 2) {
    _tile_zero(2);
    _tile_zero(3);
  }
  for (int64_t t = 0; t < kt; ++t) {
    const int8_t* bt = b + t * kTileRows * kGroupBytes;
    _tile_loadd(6, bt, kGroupBytes);
    _tile_loadd(7, bt + 64, kGroupBytes);
    _tile_loadd(4, at[0].a + t * kTileK, at[0].rs);
    _tile_dpbusd(0, 4, 6);
    _tile_dpbusd(1, 4, 7);
    if constexpr (MT == 2) {
      _tile_loadd(5, at[1].a + t * kTileK, at[1].rs);
      _tile_dpbusd(2, 5, 6);
      _tile_dpbusd(3, 5, 7);
    }
  }
  _tile_stored(0, c, 32 * 4);
  _tile_stored(1, c + 16, 32 * 4);
  if constexpr (MT == 2) {
    _tile_stored(2, c + 16 * 32, 32 * 4);
    _tile_stored(3, c + 16 * 32 + 16, 32 * 4);
  }
}

}  // namespace

void int8_gemm_amx(const Int8GemmParams& p, int64_t m0, int64_t m1, int64_t nb0, int64_t nb1) {
  const int64_t k = p.b.k, kp = packed_k(k), kt = kp / kTileK;
  const int64_t mc = std::max<int64_t>(2 * kTileRows, kABytes / kp / (2 * kTileRows) * (2 * kTileRows));
  thread_local std::vector<uint8_t> buf, tail;
  thread_local std::vector<int32_t> sums;
  TileConfig cfg;
  for (int i = 0; i < 8; ++i) {
    cfg.rows[i] = kTileRows;
    cfg.colsb[i] = 64;
  }
  _tile_loadconfig(&cfg);
  alignas(64) int32_t c[2 * kTileRows * 32];
  for (int64_t mb = m0; mb < m1; mb += mc) {
    const int64_t rows = std::min(mc, m1 - mb);
    const ARows a = load_a_block(p, mb, rows, kp, buf, sums);
    // Tiles read 16 whole rows: a last partial group is copied, zero rows after it.
    const int64_t groups = (rows + kTileRows - 1) / kTileRows, last = rows - (groups - 1) * kTileRows;
    std::vector<ATile> at(groups + 1);
    for (int64_t g = 0; g < groups; ++g) at[g] = {a.a + g * kTileRows * a.rs, a.rs};
    if (last < kTileRows) {
      tail.assign(kTileRows * kp, 0);
      for (int64_t r = 0; r < last; ++r) std::memcpy(tail.data() + r * kp, at[groups - 1].a + r * a.rs, kp);
      at[groups - 1] = {tail.data(), kp};
    }
    for (int64_t nb = nb0; nb < nb1; ++nb) {
      const int64_t n0 = nb * kNB, ncols = std::min(kNB, p.b.n - n0);
      for (int64_t h = 0; h < ncols; h += 32) {
        const int8_t* b = p.b.data + nb * kp * kNB + 4 * h;
        const int64_t nc = std::min<int64_t>(32, ncols - h);
        for (int64_t g = 0; g < groups; g += 2) {
          const bool two = g + 1 < groups;
          if (two) {
            tile_product<2>(&at[g], b, kt, c);
          } else {
            tile_product<1>(&at[g], b, kt, c);
          }
          const int64_t r0 = g * kTileRows, nr = std::min(rows - r0, (two ? 2 : 1) * kTileRows);
          for (int64_t j = 0; j < nc; j += 16) {
            const Cols16 cv = cols16(p, n0 + h + j);
            for (int64_t r = 0; r < nr; ++r)
              store16_avx512(p, cv, mb + r0 + r, n0 + h + j, _mm512_load_si512(c + r * 32 + j), lanes16(nc - j),
                             p.w_zp_nonzero ? sums[r0 + r] : 0);
          }
        }
      }
    }
  }
  _tile_release();
}

}  // namespace fakequant
