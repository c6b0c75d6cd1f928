// bn_fold.h — BN folding's per-channel weight arithmetic for QAT (torch-free, scalar: weights are small).
//
// Forward: sf_c = gamma_c / std_c, u = W * sf_c, each rounded to float as torch's elementwise ops round
// them, for std_c = sqrt(running_var_c + eps) computed by the caller (torch's CPU sqrt is not always the
// correctly rounded one, and the forward must equal torch's expression bit for bit); the fake quant of u
// runs elsewhere, then out = fq(u) / sf_c while BN trains. Backward (g = dL/dout, m = fake quant's mask bit of u):
//   du = m * (g [/ sf]),  dW = du * sf,  dgamma = (sum(du * W) [- sum(g * fq(u)) / sf^2]) / std  per channel.
#pragma once

#include <cstdint>

namespace fakequant {

// A weight of `channels` rows (output channels) of `row` contiguous floats, with BN's per-channel terms.
struct BnFoldParams {
  int64_t channels = 0, row = 0;
  const float* gamma = nullptr;
  const float* std_dev = nullptr;  // sqrt(running_var + eps), one per channel
  float* sf = nullptr;             // written by the forward, one per channel
};

static inline void bn_fold_forward(const BnFoldParams& p, const float* w, float* u) {
  for (int64_t c = 0; c < p.channels; ++c) {
    const float s = p.sf[c] = p.gamma[c] / p.std_dev[c];
    for (int64_t j = c * p.row; j < (c + 1) * p.row; ++j) u[j] = w[j] * s;
  }
}

// out = q / sf per channel.
static inline void bn_fold_unscale(const BnFoldParams& p, const float* q, float* out) {
  for (int64_t c = 0; c < p.channels; ++c) {
    const float s = p.sf[c];
    for (int64_t j = c * p.row; j < (c + 1) * p.row; ++j) out[j] = q[j] / s;
  }
}

// Lanes of the per-channel sums below: element k of a row adds into lane k % kFoldLanes, then the lanes sum in
// order (a fixed order, independent of threads, without one running sum's add latency per element).
constexpr int kFoldLanes = 8;

static inline float sum_lanes(const float* lanes) {
  float t = 0.f;
  for (int l = 0; l < kFoldLanes; ++l) t += lanes[l];
  return t;
}

// mask: one bit per element of u in memory order (null: the gradient passes everywhere); q: fq(u), read
// when divide; dw / dgamma may be null (not wanted).
static inline void bn_fold_backward(const BnFoldParams& p, const float* g, const float* q, const uint64_t* mask,
                                    const float* w, bool divide, float* dw, float* dgamma) {
  for (int64_t c = 0; c < p.channels; ++c) {
    const float s = p.sf[c];
    float dsf[kFoldLanes] = {}, dsf_q[kFoldLanes] = {};
    const auto step = [&](int64_t j, int l) {
      const bool m = mask == nullptr || ((mask[j >> 6] >> (j & 63)) & 1);
      const float du = (divide ? g[j] / s : g[j]) * (m ? 1.f : 0.f);
      if (dw) dw[j] = du * s;
      dsf[l] += du * w[j];
      if (divide) dsf_q[l] += g[j] * q[j];
    };
    const int64_t begin = c * p.row, end = begin + p.row;
    int64_t j = begin;
    for (; j + kFoldLanes <= end; j += kFoldLanes) {
      for (int l = 0; l < kFoldLanes; ++l) step(j + l, l);
    }
    for (int l = 0; j < end; ++j, ++l) step(j, l);
    if (dgamma) dgamma[c] = (divide ? sum_lanes(dsf) - sum_lanes(dsf_q) / (s * s) : sum_lanes(dsf)) / p.std_dev[c];
  }
}

// The folded bias once BN uses running statistics: b = beta - mean * sf (+ bias * sf with a conv / linear
// bias), rounded per op as torch's expression; backward (g = dL/db): dbeta = g, dbias = g * sf,
// dgamma = g * (bias - mean) / std  (bias = 0 without one).
static inline void bn_folded_bias_forward(const BnFoldParams& p, const float* beta, const float* mean,
                                          const float* bias, float* b) {
  for (int64_t c = 0; c < p.channels; ++c) {
    p.sf[c] = p.gamma[c] / p.std_dev[c];
    b[c] = beta[c] - mean[c] * p.sf[c];
    if (bias) b[c] = b[c] + bias[c] * p.sf[c];
  }
}

static inline void bn_folded_bias_backward(const BnFoldParams& p, const float* g, const float* mean,
                                           const float* bias, float* dgamma, float* dbias) {
  for (int64_t c = 0; c < p.channels; ++c) {
    if (dgamma) dgamma[c] = g[c] * ((bias ? bias[c] : 0.f) - mean[c]) / p.std_dev[c];
    if (dbias) dbias[c] = g[c] * p.sf[c];
  }
}

}  // namespace fakequant
