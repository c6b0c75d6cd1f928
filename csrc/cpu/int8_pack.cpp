// int8_pack.cpp — weight packing (GEMM, depthwise), epilogue vectors and activation rows (im2col).
#include <algorithm>

#include "int8_dwconv.h"
#include "int8_gemm.h"

namespace fakequant {

void pack_weight_blocks(const int8_t* w, int64_t n, int64_t k, int64_t rs, int64_t cs, int8_t* out,
                        int32_t* colsum, int64_t b0, int64_t b1) {
  const int64_t kp = packed_k(k);
  for (int64_t b = b0; b < b1; ++b) {
    int8_t* blk = out + b * kp * kNB;
    std::memset(blk, 0, static_cast<size_t>(kp * kNB));
    for (int64_t j = 0; j < kNB; ++j) {
      const int64_t col = b * kNB + j;
      int32_t sum = 0;
      if (col < n) {
        const int8_t* row = w + col * rs;
        for (int64_t i = 0; i < k; ++i) {
          const int8_t v = row[i * cs];
          blk[((i >> 2) * kNB + j) * 4 + (i & 3)] = v;
          sum += v;
        }
      }
      colsum[col] = sum;
    }
  }
}

void pack_dw_weight(const int8_t* w, const int32_t* w_zp, int64_t channels, int64_t taps, int64_t cpad, int32_t* out,
                    int32_t* colsum) {
  for (int64_t c = 0; c < cpad; ++c) {
    int32_t sum = 0;
    for (int64_t t = 0; t < taps; ++t) {
      const int32_t v = c < channels ? w[c * taps + t] : 0;
      out[t * cpad + c] = c < channels ? v - w_zp[c] : 0;
      sum += v;
    }
    colsum[c] = sum;
  }
}

void prepare_epilogue(const PackedB& b, bool a_signed, int32_t a_zp, const float* w_scale, const int32_t* w_zp,
                      const float* bias, float x_scale, float out_scale, Epilogue epi, int64_t npad,
                      EpilogueVectors& v) {
  const int64_t za = static_cast<int64_t>(a_zp) + (a_signed ? 128 : 0);
  for (int64_t n = 0; n < npad; ++n) {
    if (n >= b.n) {
      v.col_corr[n] = v.w_zp[n] = 0;
      v.bias[n] = v.mult[n] = 0.f;
      continue;
    }
    const int64_t zw = w_zp ? w_zp[n] : 0;
    v.w_zp[n] = static_cast<int32_t>(zw);
    v.col_corr[n] = static_cast<int32_t>(static_cast<uint32_t>(za * b.colsum[n] - b.k * za * zw));
    const float sw = w_scale ? w_scale[n] : 1.f, bn = bias ? bias[n] : 0.f;
    switch (epi) {
      case Epilogue::Int32: v.mult[n] = 1.f, v.bias[n] = 0.f; break;
      case Epilogue::U8: {
        const RequantScales r = requant_scales(x_scale, sw, bn, out_scale);
        v.mult[n] = r.mult, v.bias[n] = r.bias_div;
        break;
      }
      case Epilogue::F32: v.mult[n] = x_scale * sw, v.bias[n] = bn; break;
    }
  }
}

namespace {

// im2col: row r = output pixel m0 + r, its taps' channel runs side by side, padding as x_zp. A
// kernel row's taps are one contiguous run of x when the group spans every channel, the dilation
// is 1 and no tap falls in the padding. Runs of up to 16 bytes move as one 16-byte copy where
// both ends allow it (the extra bytes land on bytes written later: rows fill in order).
void gather_patches(const Int8GemmParams& p, int64_t m0, int64_t rows, int64_t kp, uint8_t* buf) {
  const ConvGeometry& g = *p.conv;
  const int64_t k = p.b.k, cg = k / (g.kh * g.kw), span = g.kw * cg;
  const bool whole = cg == g.c && g.dw == 1;
  const uint8_t* x_end = g.x + g.batch * g.h * g.w * g.c;
  const uint8_t* buf_end = buf + rows * kp;
  static const uint8_t zeros[kKPad] = {};  // the k padding: fewer than kKPad bytes
  const auto copy = [&](uint8_t* d, const uint8_t* src, int64_t n, const uint8_t* src_end) {
    if (n <= 16 && src + 16 <= src_end && d + 16 <= buf_end) {
      std::memcpy(d, src, 16);
    } else {
      std::memcpy(d, src, static_cast<size_t>(n));
    }
  };
  OutPixel o = out_pixel(g, m0);
  for (int64_t r = 0; r < rows; ++r, advance_pixel(g, o)) {
    const int64_t ix0 = o.ox * g.sw - g.pw;
    uint8_t* d = buf + r * kp;
    for (int64_t i = 0; i < g.kh; ++i, d += span) {
      const int64_t iy = o.oy * g.sh - g.ph + i * g.dh;
      if (iy < 0 || iy >= g.h) {
        std::memset(d, g.x_zp, static_cast<size_t>(span));
        continue;
      }
      const uint8_t* row = g.x + (o.b * g.h + iy) * g.w * g.c + p.conv_c0;
      if (whole && ix0 >= 0 && ix0 + g.kw <= g.w) {
        copy(d, row + ix0 * g.c, span, x_end);
        continue;
      }
      for (int64_t j = 0; j < g.kw; ++j) {
        const int64_t ix = ix0 + j * g.dw;
        if (ix < 0 || ix >= g.w) {
          std::memset(d + j * cg, g.x_zp, static_cast<size_t>(cg));
        } else {
          copy(d + j * cg, row + ix * g.c, cg, x_end);
        }
      }
    }
    copy(d, zeros, kp - k, zeros + kKPad);
  }
}

}  // namespace

ARows a_rows(const Int8GemmParams& p, int64_t m0, int64_t rows, int64_t kp, uint8_t* buf) {
  const int64_t k = p.b.k;
  if (p.conv) {
    gather_patches(p, m0, rows, kp, buf);
    return {buf, kp};
  }
  const auto* src = static_cast<const uint8_t*>(p.a) + m0 * p.a_rs;
  if (!p.a_signed && p.a_cs == 1 && k == kp) return {src, p.a_rs};
  const uint8_t flip = p.a_signed ? 0x80 : 0x00;
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* s = src + r * p.a_rs;
    uint8_t* d = buf + r * kp;
    if (p.a_cs == 1) {
      for (int64_t i = 0; i < k; ++i) d[i] = s[i] ^ flip;
    } else {
      for (int64_t i = 0; i < k; ++i) d[i] = s[i * p.a_cs] ^ flip;
    }
    std::memset(d + k, 0, static_cast<size_t>(kp - k));
  }
  return {buf, kp};
}

void a_row_sums(ARows a, int64_t rows, int64_t k, int32_t* rowsum) {
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* s = a.a + r * a.rs;
    int32_t sum = 0;
    for (int64_t i = 0; i < k; ++i) sum += s[i];
    rowsum[r] = sum;
  }
}

uint8_t a_max(ARows a, int64_t rows, int64_t k) {
  uint8_t mx = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* s = a.a + r * a.rs;
    for (int64_t i = 0; i < k; ++i) mx = std::max(mx, s[i]);
  }
  return mx;
}

}  // namespace fakequant
