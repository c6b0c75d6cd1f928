// int8_gemm.h — int8 GEMM with a fused requantization epilogue: layout, params, entry points; torch-free.
//
// u8 / s8 activations x s8 weights; the packed-weight layout, the shared scalar pieces and the
// per-ISA entry points.
//
// C[m, n] = sum_k (a[m, k] - a_zp) * (w[n, k] - w_zp[n]), exact in int32, then one epilogue:
// raw int32, uint8 requantized as fbgemm's ReQuantizeOutput, or float (fbgemm's ReQuantizeForFloat).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "conv_geometry.h"
#include "requant.h"

namespace fakequant {

// Packed weights, one layout for every ISA: columns in blocks of kNB, k padded to a multiple of
// kKPad with zeros; inside a block, k-group g (4 consecutive k) of column j is the 4 bytes at
// (g * kNB + j) * 4. Sixteen columns of one k-group are one VNNI operand (64 bytes) and sixteen
// k-groups of sixteen columns are one AMX B tile (stride kNB * 4 bytes).
constexpr int64_t kNB = 64;
constexpr int64_t kKPad = 64;
constexpr int64_t kGroupBytes = kNB * 4;

static inline int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }
static inline int64_t packed_k(int64_t k) { return round_up(k > 0 ? k : 1, kKPad); }
static inline int64_t packed_blocks(int64_t n) { return (n + kNB - 1) / kNB; }
static inline int64_t packed_bytes(int64_t n, int64_t k) { return packed_blocks(n) * packed_k(k) * kNB; }

// Largest K for which every exact u8 x s8 (or s8 x s8) dot product fits int32: 255 * 128 * K < 2^31.
constexpr int64_t kMaxGemmK = 65793;

struct PackedB {
  const int8_t* data = nullptr;    // packed_bytes(n, k) bytes
  const int32_t* colsum = nullptr; // sum_k w[n, k], zero past n (packed_blocks(n) * kNB entries)
  int64_t n = 0, k = 0;
  int32_t wmin = 0, wmax = 0;      // weight range: AVX2 uses vpmaddubsw when it cannot saturate
};

// Packs w [n, k] (element strides rs, cs) into `out` (packed_bytes(n, k) bytes) and fills colsum,
// for column blocks [b0, b1) (blocks are independent, so callers may split them).
void pack_weight_blocks(const int8_t* w, int64_t n, int64_t k, int64_t rs, int64_t cs, int8_t* out,
                        int32_t* colsum, int64_t b0, int64_t b1);

// Per-column epilogue vectors, packed_blocks(n) * kNB entries each (zero past n), made by
// prepare_epilogue from the qparams.
struct EpilogueVectors {
  int32_t* col_corr = nullptr;  // a_zp_eff * colsum[n] - K * a_zp_eff * w_zp[n]   (mod 2^32)
  int32_t* w_zp = nullptr;      // weight zero point per column
  float* bias = nullptr;        // U8: bias[n] / (sx * sw[n]);  F32: bias[n]
  float* mult = nullptr;        // U8: sx * sw[n] / sy;         F32: sx * sw[n]
};

struct Int8GemmParams {
  const void* a = nullptr;      // [m, k] with element strides a_rs, a_cs
  int64_t m = 0, a_rs = 0, a_cs = 0;
  // Or, when conv is set, im2col rows of a convolution: row = output pixel, k = (i, j, channel)
  // over channels [conv_c0, conv_c0 + k / (kh * kw)) of the input (one group).
  const ConvGeometry* conv = nullptr;
  int64_t conv_c0 = 0;
  bool a_signed = false;        // s8 activations run as u8 (a + 128) with a_zp_eff = a_zp + 128
  bool w_zp_nonzero = false;    // any w_zp != 0: the epilogue needs activation row sums
  PackedB b;
  Epilogue epi = Epilogue::Int32;
  EpilogueVectors v;
  void* out = nullptr;          // [m, n] of int32, uint8 or float, row stride ldc, unit column stride
  int64_t ldc = 0;
  int32_t out_zp = 0;           // U8: zero point and clamp range (out_min = zero point when ReLU fused)
  int32_t out_min = 0, out_max = 255;
};

// Fills `v` for `n` columns (and zeros up to the padded width `npad`). w_scale, w_zp and bias may
// be null (1, 0, none). Scales as fbgemm rounds them: a = float(sx) * float(sw[n]), mult = a / sy.
void prepare_epilogue(const PackedB& b, bool a_signed, int32_t a_zp, const float* w_scale, const int32_t* w_zp,
                      const float* bias, float x_scale, float out_scale, Epilogue epi, int64_t npad,
                      EpilogueVectors& v);

// ---- shared scalar pieces (reference kernel, tails, vector kernels' edges) -------------------------

// Byte k of activation row m as the kernels multiply it: u8, or s8 shifted by +128.
static inline uint8_t a_byte(const Int8GemmParams& p, int64_t m, int64_t k) {
  if (p.conv) {
    const ConvGeometry& g = *p.conv;
    const int64_t cg = p.b.k / (g.kh * g.kw), tap = k / cg;
    const int64_t off = conv_tap_offset(g, m, tap / g.kw, tap % g.kw);
    return static_cast<uint8_t>(off < 0 ? g.x_zp : g.x[off + p.conv_c0 + k % cg]);
  }
  const char* base = static_cast<const char*>(p.a) + m * p.a_rs + k * p.a_cs;
  return static_cast<uint8_t>(*base) ^ (p.a_signed ? 0x80 : 0x00);
}

// Activation rows [m0, m0 + rows) as the vector kernels read them: u8 rows (s8 shifted by +128)
// with row stride rs, readable up to kp bytes per row (zeros past K). Points into A itself when A
// already has that form (u8, unit column stride, K a multiple of kp's granule), else into `buf`
// (rows * kp bytes), gathering conv patches when p.conv is set. kp = round_up(K, 4) for AVX2 /
// VNNI, packed_k(K) for AMX.
struct ARows {
  const uint8_t* a;
  int64_t rs;
};
ARows a_rows(const Int8GemmParams& p, int64_t m0, int64_t rows, int64_t kp, uint8_t* buf);

// rowsum[r] = sum_k a[r * rs + k] over k < K, for r < rows.
void a_row_sums(ARows a, int64_t rows, int64_t k, int32_t* rowsum);
// Largest byte of rows [0, rows) of `a`, k < K.
uint8_t a_max(ARows a, int64_t rows, int64_t k);

// Every kernel's first step for a block of rows [m0, m0 + rows): the A rows packed into buf (grown as
// needed) and, when some weight zero point is nonzero, their row sums in sums.
static inline ARows load_a_block(const Int8GemmParams& p, int64_t m0, int64_t rows, int64_t kp,
                                 std::vector<uint8_t>& buf, std::vector<int32_t>& sums) {
  if (buf.size() < static_cast<size_t>(rows * kp)) buf.resize(rows * kp);
  const ARows a = a_rows(p, m0, rows, kp, buf.data());
  if (p.w_zp_nonzero) {
    sums.resize(rows);
    a_row_sums(a, rows, p.b.k, sums.data());
  }
  return a;
}

// Corrected accumulator: acc - col_corr[n] - w_zp[n] * rowsum[m], wrapping mod 2^32 like the vector code.
static inline int32_t corrected(const Int8GemmParams& p, int32_t acc, int64_t n, int32_t rowsum) {
  uint32_t r = static_cast<uint32_t>(acc) - static_cast<uint32_t>(p.v.col_corr[n]);
  if (p.w_zp_nonzero) r -= static_cast<uint32_t>(p.v.w_zp[n]) * static_cast<uint32_t>(rowsum);
  return static_cast<int32_t>(r);
}

// One output element of the epilogue, from the raw accumulator.
static inline void store_scalar(const Int8GemmParams& p, int64_t m, int64_t n, int32_t acc, int32_t rowsum) {
  const int32_t c = corrected(p, acc, n, rowsum);
  switch (p.epi) {
    case Epilogue::Int32: static_cast<int32_t*>(p.out)[m * p.ldc + n] = c; break;
    case Epilogue::U8:
      static_cast<uint8_t*>(p.out)[m * p.ldc + n] =
          requant_u8(c, p.v.bias[n], p.v.mult[n], p.out_zp, p.out_min, p.out_max);
      break;
    case Epilogue::F32: static_cast<float*>(p.out)[m * p.ldc + n] = static_cast<float>(c) * p.v.mult[n] + p.v.bias[n];
  }
}

// Entry points: rows [m0, m1) x column blocks [nb0, nb1) of the output.
void int8_gemm_ref(const Int8GemmParams& p, int64_t m0, int64_t m1, int64_t nb0, int64_t nb1);
void int8_gemm_avx2(const Int8GemmParams& p, int64_t m0, int64_t m1, int64_t nb0, int64_t nb1);
void int8_gemm_vnni(const Int8GemmParams& p, int64_t m0, int64_t m1, int64_t nb0, int64_t nb1);
void int8_gemm_amx(const Int8GemmParams& p, int64_t m0, int64_t m1, int64_t nb0, int64_t nb1);

}  // namespace fakequant
