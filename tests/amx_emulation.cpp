// amx_emulation.cpp — the AMX int8 GEMM kernel with emulated tile instructions vs the reference.
//
// Tile instructions run as scalar code, so the kernel's logic is tested on CPUs without AMX
// (built and run by tests/test_int8_gemm.py).
#include <immintrin.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

namespace emu {

struct Config {
  uint8_t palette, start_row, reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};
Config cfg;
bool configured = false;
uint8_t tiles[8][16][64];

void fail(const char* what) {
  std::fprintf(stderr, "AMX emulation: %s\n", what);
  std::exit(2);
}

void loadconfig(const void* p) {
  std::memcpy(&cfg, p, sizeof(cfg));
  if (cfg.palette != 1 || cfg.start_row != 0) fail("bad palette or start row");
  for (int t = 0; t < 8; ++t)
    if (cfg.rows[t] > 16 || cfg.colsb[t] > 64) fail("tile larger than 16 x 64 bytes");
  configured = true;
  std::memset(tiles, 0, sizeof(tiles));
}

void release() {
  if (!configured) fail("release without config");
  configured = false;
}

void check(int t) {
  if (!configured) fail("tile instruction without a loaded config");
  if (t < 0 || t > 7 || cfg.rows[t] == 0) fail("unconfigured tile");
}

void zero(int t) {
  check(t);
  std::memset(tiles[t], 0, sizeof(tiles[t]));
}

void loadd(int t, const void* base, long stride) {
  check(t);
  for (int r = 0; r < cfg.rows[t]; ++r)
    std::memcpy(tiles[t][r], static_cast<const uint8_t*>(base) + r * stride, cfg.colsb[t]);
}

void stored(int t, void* base, long stride) {
  check(t);
  for (int r = 0; r < cfg.rows[t]; ++r)
    std::memcpy(static_cast<uint8_t*>(base) + r * stride, tiles[t][r], cfg.colsb[t]);
}

// C[m][n] += sum_k4 sum_i u8 A[m][4 k4 + i] * s8 B[k4][4 n + i]
void dpbusd(int c, int a, int b) {
  check(c), check(a), check(b);
  if (cfg.rows[c] != cfg.rows[a] || cfg.colsb[c] != cfg.colsb[b] || cfg.colsb[a] != 4 * cfg.rows[b])
    fail("tile shapes do not fit a dot product");
  for (int m = 0; m < cfg.rows[c]; ++m)
    for (int n = 0; n < cfg.colsb[c] / 4; ++n) {
      int32_t acc;
      std::memcpy(&acc, &tiles[c][m][4 * n], 4);
      uint32_t u = static_cast<uint32_t>(acc);
      for (int k4 = 0; k4 < cfg.rows[b]; ++k4)
        for (int i = 0; i < 4; ++i)
          u += static_cast<uint32_t>(tiles[a][m][4 * k4 + i] * static_cast<int8_t>(tiles[b][k4][4 * n + i]));
      acc = static_cast<int32_t>(u);
      std::memcpy(&tiles[c][m][4 * n], &acc, 4);
    }
}

}  // namespace emu

#undef _tile_loadd
#undef _tile_stored
#undef _tile_zero
#undef _tile_dpbusd
#define _tile_loadconfig(p) emu::loadconfig(p)
#define _tile_release() emu::release()
#define _tile_loadd(t, base, stride) emu::loadd(t, base, stride)
#define _tile_stored(t, base, stride) emu::stored(t, base, stride)
#define _tile_zero(t) emu::zero(t)
#define _tile_dpbusd(c, a, b) emu::dpbusd(c, a, b)

#include "../csrc/cpu/int8_gemm_amx.cpp"

using namespace fakequant;

// One case: the AMX kernel over the binding's kind of split (two row ranges, two block ranges)
// against the reference kernel; returns the number of differing outputs. With `conv`, the rows
// are its im2col rows over channels [c0, c0 + k / (kh * kw)).
int run_case(std::mt19937& rng, int64_t m, int64_t k, int64_t n, bool a_signed, bool a_strided, bool w_zp,
             Epilogue epi, const ConvGeometry* conv = nullptr, int64_t c0 = 0) {
  std::uniform_int_distribution<int> byte(0, 255);
  const int64_t a_cs = a_strided ? 3 : 1, a_rs = a_strided ? k * 3 + 5 : k;
  std::vector<uint8_t> a(static_cast<size_t>(m * a_rs + k * a_cs + 1));
  for (auto& v : a) v = static_cast<uint8_t>(byte(rng));
  std::vector<int8_t> w(static_cast<size_t>(n * k));
  for (auto& v : w) v = static_cast<int8_t>(byte(rng) - 128);
  if (!w.empty()) w[0] = -128;
  std::vector<int8_t> packed(static_cast<size_t>(packed_bytes(n, k)));
  const int64_t nblk = packed_blocks(n), npad = nblk * kNB;
  std::vector<int32_t> colsum(static_cast<size_t>(npad)), zps(static_cast<size_t>(n)), ints(2 * npad);
  std::vector<float> scales(static_cast<size_t>(n)), bias(static_cast<size_t>(n)), floats(2 * npad);
  for (int64_t j = 0; j < n; ++j) {
    zps[j] = w_zp ? byte(rng) % 9 - 4 : 0;
    scales[j] = 1e-3f * (1 + byte(rng));
    bias[j] = 0.01f * (byte(rng) - 128);
  }
  pack_weight_blocks(w.data(), n, k, k, 1, packed.data(), colsum.data(), 0, nblk);
  Int8GemmParams p;
  p.a = a.data();
  p.m = m, p.a_rs = a_rs, p.a_cs = a_cs, p.a_signed = a_signed;
  p.conv = conv, p.conv_c0 = c0;
  p.b = {packed.data(), colsum.data(), n, k, -128, 127};
  p.v = {ints.data(), ints.data() + npad, floats.data(), floats.data() + npad};
  prepare_epilogue(p.b, a_signed, a_signed ? -3 : 77, scales.data(), zps.data(), bias.data(), 0.02f, 0.05f, epi,
                   npad, p.v);
  p.w_zp_nonzero = w_zp;
  p.epi = epi;
  p.out_zp = 100, p.out_min = 3, p.out_max = 250;
  p.ldc = n + 3;
  const size_t elem = epi == Epilogue::U8 ? 1 : 4, bytes = static_cast<size_t>(m * p.ldc) * elem;
  std::vector<uint8_t> got(bytes, 0xAB), want(bytes, 0xAB);
  p.out = want.data();
  int8_gemm_ref(p, 0, m, 0, nblk);
  p.out = got.data();
  const int64_t ms = std::min(m, round_up(m / 2, 16)), bs = nblk / 2;
  int8_gemm_amx(p, 0, ms, 0, bs);
  int8_gemm_amx(p, 0, ms, bs, nblk);
  int8_gemm_amx(p, ms, m, 0, bs);
  int8_gemm_amx(p, ms, m, bs, nblk);
  int bad = 0;
  for (size_t i = 0; i < bytes; ++i) bad += got[i] != want[i];
  if (bad)
    std::fprintf(stderr, "mismatch: m=%ld k=%ld n=%ld signed=%d strided=%d w_zp=%d epi=%d: %d bytes\n", long(m),
                 long(k), long(n), a_signed, a_strided, w_zp, int(epi), bad);
  return bad;
}

int main() {
  std::mt19937 rng(12345);
  const int64_t shapes[][3] = {{1, 1, 1},   {1, 64, 64},   {16, 64, 32}, {17, 65, 33}, {31, 128, 64}, {32, 4, 100},
                               {33, 200, 130}, {50, 63, 17}, {64, 256, 64}, {97, 1000, 70}, {130, 129, 200}};
  int bad = 0, cases = 0;
  for (const auto& s : shapes)
    for (int variant = 0; variant < 6; ++variant) {
      const Epilogue epi = static_cast<Epilogue>(variant % 3);
      bad += run_case(rng, s[0], s[1], s[2], variant & 1, variant == 2 || variant == 5, variant >= 3, epi) != 0;
      ++cases;
    }
  std::vector<uint8_t> image(2 * 9 * 7 * 6);
  for (auto& v : image) v = static_cast<uint8_t>(rng());
  for (int64_t stride = 1; stride <= 2; ++stride)
    for (int64_t c0 = 0; c0 <= 3; c0 += 3) {  // groups of 3 channels, and all 6
      ConvGeometry g;
      g.x = image.data();
      g.batch = 2, g.h = 9, g.w = 7, g.c = 6, g.kh = 3, g.kw = 3, g.sh = g.sw = stride, g.ph = g.pw = 1;
      g.oh = (9 + 2 - 3) / stride + 1, g.ow = (7 + 2 - 3) / stride + 1, g.x_zp = 17;
      const int64_t cg = c0 ? 3 : 6;
      bad += run_case(rng, g.batch * g.oh * g.ow, 9 * cg, 40, false, false, c0 != 0, Epilogue::U8, &g, c0) != 0;
      ++cases;
    }
  if (emu::configured) emu::fail("tile config left loaded");
  std::printf("%d of %d cases match the reference kernel\n", cases - bad, cases);
  return bad ? 1 : 0;
}
