// fake_quant.h — fake-quant kernels (forward with bit mask, mask backward): scalar element form and
// per-ISA entry points. Each entry point handles the elements [begin, end) of p.it; begin is a
// multiple of 64.
#pragma once

#include <cstdint>

#include "../params.h"
#include "quantize.h"
#include "strided.h"
#include "vec_rows.h"

namespace fakequant {

// torch's fake-quant rule on one loaded value with its channel's scale, 1/scale and zero point:
// returns y and sets m (the mask bit). float for float32/float16/bfloat16 inputs.
FQ_HD static inline float fake_quant_value(const FakeQuantParams& p, float x, float s, float inv, float zp, bool& m) {
  float qf = quantize_unclamped(x, inv, zp, p.zp_mode);
  if (p.int64_cast) qf = emulate_int64_cast(qf);
  m = in_quant_range(qf, p.quant_min, p.quant_max);
  const float q = clamp_q(qf, p.quant_min, p.quant_max);
  // A float zero point makes torch subtract and multiply in double (the result can differ by
  // double rounding); an integer one is exact either way.
  return p.zp_mode == ZeroPointMode::AddThenRound ? static_cast<float>((static_cast<double>(q) - zp) * s)
                                                  : dequantize(q, zp, s);
}

// float64 inputs: x * inv_scale in double; y in double only in the per-channel op.
FQ_HD static inline double fake_quant_value(const FakeQuantParams& p, double x, float s, float inv, float zp, bool& m) {
  double qf = quantize_unclamped(x, inv, zp, p.zp_mode);
  if (p.int64_cast) qf = emulate_int64_cast(qf);
  m = in_quant_range(qf, p.quant_min, p.quant_max);
  const double q = clamp_q(qf, p.quant_min, p.quant_max);
  return p.int64_cast ? (q - zp) * static_cast<double>(s) : dequantize(static_cast<float>(q), zp, s);
}

// torch.relu's value (NaN stays NaN); the fused ReLU's gradient passes only where x > 0.
template <class T>
static inline T relu_value(T x) { return x < 0 ? T(0) : x; }

// fake_quant_value of x, or with p.relu of relu(x): then the mask bit also needs x > 0, and r is the
// ReLU's own bit, !(x <= 0) (torch's threshold_backward passes NaN's gradient on).
template <class T>
static inline T fake_quant_relu_value(const FakeQuantParams& p, T x, float s, float inv, float zp, bool& m, bool& r) {
  r = !(x <= 0);
  if (!p.relu) return fake_quant_value(p, x, s, inv, zp, m);
  const T y = fake_quant_value(p, relu_value(x), s, inv, zp, m);
  m = m && x > 0;
  return y;
}

// One element of torch's fake-quant ops; writes y, returns the mask bit and sets r (see above).
static inline bool fake_quant_element(const FakeQuantParams& p, int64_t xi, int64_t yi, int64_t c, bool& r) {
  const float s = p.scale[c], zp = p.zero_point[c], inv = inv_scale_of(s);
  bool m;
  if (p.dtype == DType::F64) {
    static_cast<double*>(p.y)[yi] = fake_quant_relu_value(p, static_cast<const double*>(p.x)[xi], s, inv, zp, m, r);
  } else {
    store_from_float(p.y, yi, p.dtype, fake_quant_relu_value(p, load_as_float(p.x, xi, p.dtype), s, inv, zp, m, r));
  }
  return m;
}

// A row of n elements through the scalar element function (reference kernel, tails, odd strides).
static inline void fake_quant_row_scalar(const FakeQuantParams& p, const int64_t* idx, int64_t in_off,
                                  int64_t out_off, int64_t n, BitWriter& bw, BitWriter& br) {
  const int last = p.it.ndim - 1;
  const int64_t c0 = p.ch_dim < 0 ? 0 : idx[p.ch_dim];
  const int64_t dc = p.ch_dim == last ? 1 : 0;
  const int64_t xs = p.it.in_stride[last], ys = p.it.out_stride[last];
  for (int64_t i = 0; i < n; ++i) {
    bool r;
    const bool m = fake_quant_element(p, in_off + i * xs, out_off + i * ys, c0 + i * dc, r);
    if (bw.active()) bw.put_bit(m);
    if (br.active()) br.put_bit(r);
  }
}

// dx = dy * mask, with dy * 0 giving -0 or NaN exactly as torch's grad * mask does.
template <class T>
FQ_HD static inline T masked_grad(T dy, bool m) { return dy * (m ? T(1) : T(0)); }

// With a fused ReLU's bit r: +0 where the ReLU stopped the gradient, as torch's threshold_backward gives.
template <class T>
static inline T masked_grad(T dy, bool m, bool r) { return r ? masked_grad(dy, m) : T(0); }

static inline void mask_grad_element(const MaskGradParams& p, int64_t in, int64_t out, bool m, bool r) {
  if (p.dtype == DType::F64) {
    static_cast<double*>(p.dx)[out] = masked_grad(static_cast<const double*>(p.dy)[in], m, r);
  } else {
    store_from_float(p.dx, out, p.dtype, masked_grad(load_as_float(p.dy, in, p.dtype), m, r));
  }
}

static inline void mask_grad_row_scalar(const MaskGradParams& p, int64_t lin, int64_t in_off,
                                 int64_t out_off, int64_t n) {
  const int last = p.it.ndim - 1;
  const int64_t xs = p.it.in_stride[last], ys = p.it.out_stride[last];
  for (int64_t i = 0; i < n; ++i) {
    const int64_t j = lin + i;
    const bool m = (p.mask[j >> 6] >> (j & 63)) & 1;
    const bool r = p.relu_mask == nullptr || ((p.relu_mask[j >> 6] >> (j & 63)) & 1);
    mask_grad_element(p, in_off + i * xs, out_off + i * ys, m, r);
  }
}

// Rows that the vector kernels take: unit strides and the formulas they implement.
static inline bool vector_rows(const Strided& it) {
  return it.in_stride[it.ndim - 1] == 1 && it.out_stride[it.ndim - 1] == 1;
}

// The vector kernels' range loop (unit strides, dtype T): row(per_lane, c, x, y, n, bw) does the
// vectors of one row whose first element has channel c (per_lane: channels innermost) and returns
// how many elements it did; the scalar form does the rest. bw / br write the mask's and the fused
// ReLU's bits.
template <DType T, class Row>
static inline void fake_quant_rows(const FakeQuantParams& p, int64_t begin, int64_t end, Row&& row) {
  BitWriter bw(p.mask, begin), br(p.relu_mask, begin);
  const int last = p.it.ndim - 1;
  for_each_row(p.it, begin, end, [&](int64_t, const int64_t* idx, int64_t in_off, int64_t out_off, int64_t n) {
    const char* x = static_cast<const char*>(p.x) + in_off * elem_size(T);
    char* y = static_cast<char*>(p.y) + out_off * elem_size(T);
    const int64_t done = row(p.ch_dim == last, p.ch_dim < 0 ? 0 : idx[p.ch_dim], x, y, n, bw, br);
    if (done == n) return;
    with_tail_index(idx, p.it.ndim, done, [&](const int64_t* tail_idx) {
      fake_quant_row_scalar(p, tail_idx, in_off + done, out_off + done, n - done, bw, br);
    });
  });
}

// The vector kernels' entry: vec(dtype_tag, int64_cast_tag, has_mask_tag, relu_tag) where the vector path
// applies (unit strides, integer zero point, fp32/fp16/bf16), the reference kernel elsewhere.
template <class F>
static inline void dispatch_fake_quant(const FakeQuantParams& p, int64_t begin, int64_t end, F&& vec);

// Same for the mask backward: vec(dtype_tag, relu_tag), or the reference kernel.
template <class F>
static inline void dispatch_mask_grad(const MaskGradParams& p, int64_t begin, int64_t end, F&& vec);

void fake_quant_ref(const FakeQuantParams& p, int64_t begin, int64_t end);
void fake_quant_avx2(const FakeQuantParams& p, int64_t begin, int64_t end);
void fake_quant_avx512(const FakeQuantParams& p, int64_t begin, int64_t end);

void mask_grad_ref(const MaskGradParams& p, int64_t begin, int64_t end);
void mask_grad_avx2(const MaskGradParams& p, int64_t begin, int64_t end);
void mask_grad_avx512(const MaskGradParams& p, int64_t begin, int64_t end);

template <class F>
static inline void dispatch_fake_quant(const FakeQuantParams& p, int64_t begin, int64_t end, F&& vec) {
  const bool ok = vector_rows(p.it) && p.zp_mode == ZeroPointMode::RoundThenAdd &&
                  with_vector_dtype(p.dtype, [&](auto t) {
                    with_bool(p.int64_cast, [&](auto cast) {
                      with_bool(p.mask != nullptr, [&](auto m) { with_bool(p.relu, [&](auto r) { vec(t, cast, m, r); }); });
                    });
                  });
  if (!ok) fake_quant_ref(p, begin, end);
}

template <class F>
static inline void dispatch_mask_grad(const MaskGradParams& p, int64_t begin, int64_t end, F&& vec) {
  const bool ok = vector_rows(p.it) &&
                  with_vector_dtype(p.dtype, [&](auto t) { with_bool(p.relu_mask != nullptr, [&](auto r) { vec(t, r); }); });
  if (!ok) mask_grad_ref(p, begin, end);
}

}  // namespace fakequant
