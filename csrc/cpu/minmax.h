// minmax.h — per-channel min / max reduction kernels (the fused observer's first pass): NaN-sticky
// folds, the scalar row form and per-ISA entry points. Each entry point folds the elements
// [begin, end) of p.it into mn[c] / mx[c], which the caller starts at +inf / -inf.
#pragma once

#include <cmath>
#include <cstdint>

#include "../params.h"
#include "quantize.h"
#include "strided.h"
#include "vec_rows.h"

namespace fakequant {

// static, as the row form below: each kernel file keeps its own copy, built for its ISA (see lsq.h).
// A channel that has met a NaN stays NaN (torch.aminmax propagates NaN). Otherwise the same choice
// as x86 MINPS / MAXPS with the accumulator first, so scalar and vector folds agree.
static inline float fold_min(float acc, float v) { return std::isnan(acc) || acc < v ? acc : v; }
static inline float fold_max(float acc, float v) { return std::isnan(acc) || acc > v ? acc : v; }

static inline void minmax_row_scalar(const MinMaxParams& p, const int64_t* idx, int64_t off, int64_t n,
                                     float* mn, float* mx) {
  const int last = p.it.ndim - 1;
  const int64_t c0 = p.ch_dim < 0 ? 0 : idx[p.ch_dim];
  const int64_t dc = p.ch_dim == last ? 1 : 0;
  const int64_t st = p.it.in_stride[last];
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = c0 + i * dc;
    const float v = load_as_float(p.x, off + i * st, p.dtype);  // exact, or monotone from float64
    mn[c] = fold_min(mn[c], v);
    mx[c] = fold_max(mx[c], v);
  }
}

void minmax_ref(const MinMaxParams& p, int64_t begin, int64_t end, float* mn, float* mx);
void minmax_avx2(const MinMaxParams& p, int64_t begin, int64_t end, float* mn, float* mx);
void minmax_avx512(const MinMaxParams& p, int64_t begin, int64_t end, float* mn, float* mx);

// The vector kernels' entry: for fp32/fp16/bf16, row(dtype_tag, per_lane, x, n, mn + c, mx + c) folds
// the vectors of each unit-stride row whose first element has channel c (per_lane: channels
// innermost) and returns how many elements it did; the scalar form does the rest. Other dtypes: the
// reference kernel.
template <class Row>
static inline void dispatch_minmax(const MinMaxParams& p, int64_t begin, int64_t end, float* mn, float* mx,
                                   Row&& row) {
  const int last = p.it.ndim - 1;
  const bool ok = for_each_vector_row(
      p.it, p.dtype, begin, end,
      [&](auto t, const int64_t* idx, int64_t off, int64_t n) {
        const int64_t c = p.ch_dim < 0 ? 0 : idx[p.ch_dim];
        return row(t, p.ch_dim == last, static_cast<const char*>(p.x) + off * elem_size(decltype(t)::value), n,
                   mn + c, mx + c);
      },
      [&](const int64_t* idx, int64_t off, int64_t n) { minmax_row_scalar(p, idx, off, n, mn, mx); });
  if (!ok) minmax_ref(p, begin, end, mn, mx);
}

}  // namespace fakequant
