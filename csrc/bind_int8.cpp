// bind_int8.cpp — tensors to the int8 kernels (GEMM, depthwise conv, quantize, elementwise ops).
//
// Weight packing, the requantizing GEMM behind int8_mm / Linear / Conv2d, the depthwise conv,
// quantize / dequantize and the uint8 elementwise ops; threads split the output.
#include <ATen/Parallel.h>

#include <cstring>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "bind.h"
#include "checks.h"
#include "cpu/conv_geometry.h"
#include "cpu/int8_dwconv.h"
#include "cpu/int8_gemm.h"
#include "cpu/qconvert.h"
#include "cpu/qelementwise.h"
#include "dispatch.h"
#include "int8_args.h"
#include "layout.h"

namespace fakequant {
namespace {

using GemmKernel = void (*)(const Int8GemmParams&, int64_t, int64_t, int64_t, int64_t);
constexpr GemmKernel kGemm[] = {int8_gemm_ref, int8_gemm_avx2, int8_gemm_vnni, int8_gemm_amx};

constexpr int64_t kSerialWork = 1 << 18;  // multiply-adds below which one thread runs it all

// Rows [0, m) in `parts` nearly equal pieces whose starts are multiples of 16 (AMX tile rows).
int64_t row_split(int64_t m, int64_t parts, int64_t i) {
  if (i >= parts) return m;
  return std::min(m, round_up(m * i / parts, 16));
}

// Column blocks [0, nblk) in `parts` nearly equal pieces.
int64_t block_split(int64_t nblk, int64_t parts, int64_t i) { return nblk * i / parts; }

// Rows x columns of the largest of mparts x nparts units.
int64_t largest_unit(int64_t m, int64_t n, int64_t mparts, int64_t nparts) {
  int64_t rows = 0, cols = 0;
  for (int64_t i = 0; i < mparts; ++i) rows = std::max(rows, row_split(m, mparts, i + 1) - row_split(m, mparts, i));
  const int64_t nblk = packed_blocks(n);
  for (int64_t i = 0; i < nparts; ++i)
    cols = std::max(cols, std::min(n, block_split(nblk, nparts, i + 1) * kNB) - block_split(nblk, nparts, i) * kNB);
  return rows * cols;
}

// Splits the output into mparts x nparts units, one per thread: the split whose largest unit is
// smallest, rows preferred on ties.
void run_gemm(const Int8GemmParams& p) {
  const int64_t nblk = packed_blocks(p.b.n);
  if (p.m == 0 || nblk == 0) return;
  const GemmKernel kernel = pick_kernel(kGemm);
  const int64_t work = p.m * nblk * kNB * std::max<int64_t>(p.b.k, 1);
  const int64_t threads = work < kSerialWork ? 1 : at::get_num_threads();
  int64_t mparts = 1, nparts = 1, best = -1;
  for (int64_t mp = threads; mp >= 1; --mp) {
    if (threads % mp != 0) continue;
    const int64_t np = std::min(nblk, threads / mp);
    const int64_t cost = largest_unit(p.m, p.b.n, mp, np);
    if (best < 0 || cost < best) mparts = mp, nparts = np, best = cost;
  }
  const auto unit = [&](int64_t u) {
    const int64_t mi = u / nparts, ni = u % nparts;
    kernel(p, row_split(p.m, mparts, mi), row_split(p.m, mparts, mi + 1), block_split(nblk, nparts, ni),
           block_split(nblk, nparts, ni + 1));
  };
  if (mparts * nparts == 1) return unit(0);
  at::parallel_for(0, mparts * nparts, 1, [&](int64_t u0, int64_t u1) {
    for (int64_t u = u0; u < u1; ++u) unit(u);
  });
}

// (packed bytes, column sums, wmin, wmax) for an int8 weight [N, K].
std::tuple<at::Tensor, at::Tensor, int64_t, int64_t> pack_weight(const at::Tensor& w) {
  check_cpu(w, "weight");
  check_dtype(w, "weight", {at::kChar});
  check_dim(w, "weight", 2);
  const int64_t n = w.size(0), k = w.size(1);
  if (k > kMaxGemmK) value_error("weight has K = " + std::to_string(k) + " > " + std::to_string(kMaxGemmK) +
                                 " columns: the int32 accumulator could overflow");
  const int64_t nblk = packed_blocks(n);
  at::Tensor data = at::empty({packed_bytes(n, k)}, w.options());
  at::Tensor colsum = at::empty({nblk * kNB}, w.options().dtype(at::kInt));
  const int8_t* src = w.data_ptr<int8_t>();
  at::parallel_for(0, nblk, 4, [&](int64_t b0, int64_t b1) {
    pack_weight_blocks(src, n, k, w.stride(0), w.stride(1), data.data_ptr<int8_t>(), colsum.data_ptr<int32_t>(),
                       b0, b1);
  });
  const bool empty = w.numel() == 0;
  return {data, colsum, empty ? 0 : w.min().item<int64_t>(), empty ? 0 : w.max().item<int64_t>()};
}

// The epilogue's per-column vectors, kept alive for one call.
struct EpilogueStorage {
  std::vector<int32_t> ints;
  std::vector<float> floats;
};

// Fills p's epilogue from `e` (p.b's colsum, n and k must be set).
void setup_epilogue(Int8GemmParams& p, EpilogueStorage& st, const EpilogueArgs& e, bool a_signed,
                          int64_t a_zp) {
  p.epi = check_epilogue(e);
  const int64_t n = p.b.n;
  const EpilogueColumns cols = epilogue_columns(e, n, at::Device(at::kCPU));
  const at::Tensor &ws = cols.w_scale, &wz = cols.w_zp, &bs = cols.bias;
  const int64_t npad = packed_blocks(n) * kNB;
  st.ints.assign(2 * npad, 0);
  st.floats.assign(2 * npad, 0.f);
  p.v = {st.ints.data(), st.ints.data() + npad, st.floats.data(), st.floats.data() + npad};
  const int32_t* zw = wz.defined() ? wz.data_ptr<int32_t>() : nullptr;
  prepare_epilogue(p.b, a_signed, static_cast<int32_t>(a_zp), ws.defined() ? ws.data_ptr<float>() : nullptr, zw,
                   bs.defined() ? bs.data_ptr<float>() : nullptr, static_cast<float>(e.x_scale),
                   static_cast<float>(e.out_scale), p.epi, npad, p.v);
  p.w_zp_nonzero = zw && std::any_of(zw, zw + n, [](int32_t z) { return z != 0; });
  p.out_zp = static_cast<int32_t>(e.out_zp);
  p.out_min = static_cast<int32_t>(e.relu ? std::max(e.out_qmin, e.out_zp) : e.out_qmin);
  p.out_max = static_cast<int32_t>(e.out_qmax);
}

// Checks a packed weight [n, k] and points p.b at it.
void set_packed(Int8GemmParams& p, const at::Tensor& packed, const at::Tensor& colsum, int64_t n, int64_t k,
                int64_t wmin, int64_t wmax) {
  check_cpu(packed, "packed weight");
  check_dtype(packed, "packed weight", {at::kChar});
  check_dtype(colsum, "column sums", {at::kInt});
  if (n < 0 || k < 0 || packed.numel() != packed_bytes(n, k) || colsum.numel() != packed_blocks(n) * kNB ||
      !packed.is_contiguous() || !colsum.is_contiguous())
    value_error("packed weight does not match its shape [" + std::to_string(n) + ", " + std::to_string(k) + "]");
  p.b = {packed.data_ptr<int8_t>(), colsum.data_ptr<int32_t>(), n, k, static_cast<int32_t>(wmin),
         static_cast<int32_t>(wmax)};
}

// The [m, n] output of p's epilogue: `out` when given (checked), else a new tensor; sets p.out, p.ldc.
at::Tensor gemm_output(Int8GemmParams& p, const std::optional<at::Tensor>& out, const at::TensorOptions& like) {
  const int64_t m = p.m, n = p.b.n;
  const at::ScalarType type = out_scalar_type(p.epi);
  at::Tensor y;
  if (out) {
    y = *out;
    check_cpu(y, "out");
    check_dtype(y, "out", {type});
    if (y.dim() != 2 || y.size(0) != m || y.size(1) != n || (n > 1 && y.stride(1) != 1))
      value_error("out must be a [" + std::to_string(m) + ", " + std::to_string(n) + "] view with unit column stride");
  } else {
    y = at::empty({m, n}, like.dtype(type));
  }
  p.out = y.data_ptr();
  p.ldc = y.stride(0);
  return y;
}

// out = epilogue(a @ w.T) for a u8/s8 [M, K] and a packed int8 weight [N, K].
at::Tensor gemm(const at::Tensor& a, const at::Tensor& packed, const at::Tensor& colsum, int64_t n, int64_t k,
                int64_t wmin, int64_t wmax, int64_t a_zp, const EpilogueArgs& e, const std::optional<at::Tensor>& out) {
  check_cpu(a, "input");
  check_dtype(a, "input", {at::kByte, at::kChar});
  check_dim(a, "input", 2);
  Int8GemmParams p;
  set_packed(p, packed, colsum, n, k, wmin, wmax);
  if (a.size(1) != k)
    value_error("input has " + std::to_string(a.size(1)) + " columns but the weight has K = " + std::to_string(k));
  p.a_signed = a.scalar_type() == at::kChar;
  check_input_zero_point(a_zp, p.a_signed);
  EpilogueStorage st;
  setup_epilogue(p, st, e, p.a_signed, a_zp);
  p.a = a.data_ptr();
  p.m = a.size(0);
  p.a_rs = a.stride(0);
  p.a_cs = a.stride(1);
  at::Tensor y = gemm_output(p, out, a.options());
  run_gemm(p);
  return y;
}

// (taps, column sums) of a depthwise weight [C, 1, kh, kw] for the direct kernel.
std::tuple<at::Tensor, at::Tensor> pack_dw(const at::Tensor& w, const at::Tensor& w_zp) {
  check_cpu(w, "weight");
  check_dtype(w, "weight", {at::kChar});
  check_dim(w, "weight", 4);
  if (w.size(1) != 1)
    value_error("a depthwise weight has one input channel per group, got " + std::to_string(w.size(1)));
  const int64_t c = w.size(0), taps = w.size(2) * w.size(3), cpad = round_up(std::max<int64_t>(c, 1), 16);
  const at::Tensor wz = column_vector(w_zp, "weight zero_point", at::kInt, c, w.device());
  const at::Tensor wc = w.contiguous();
  at::Tensor out = at::empty({taps * cpad}, w.options().dtype(at::kInt));
  at::Tensor colsum = at::empty({packed_blocks(c) * kNB}, w.options().dtype(at::kInt)).zero_();
  pack_dw_weight(wc.data_ptr<int8_t>(), wz.data_ptr<int32_t>(), c, taps, cpad, out.data_ptr<int32_t>(),
                 colsum.data_ptr<int32_t>());
  return {out, colsum};
}

// Below this output width the border pixels, whose taps read the padding one by one, dominate a
// depthwise conv; the input is then copied into a padded buffer so every pixel runs the interior path.
constexpr int64_t kPadCopyBelowWidth = 32;

// g's input copied into `padded` (channels-last, the padding filled with the zero point); g then
// describes the padded input with no padding.
void pad_input(ConvGeometry& g, std::vector<uint8_t>& padded) {
  const int64_t h = g.h + 2 * g.ph, w = g.w + 2 * g.pw, row = g.w * g.c;
  padded.assign(g.batch * h * w * g.c, static_cast<uint8_t>(g.x_zp));
  for (int64_t b = 0; b < g.batch; ++b)
    for (int64_t y = 0; y < g.h; ++y)
      std::memcpy(padded.data() + ((b * h + y + g.ph) * w + g.pw) * g.c, g.x + (b * g.h + y) * row, row);
  g.x = padded.data();
  g.h = h, g.w = w;
  g.ph = g.pw = 0;
}

using DwKernel = void (*)(const DwConvParams&, int64_t, int64_t);
constexpr DwKernel kDw[] = {dwconv_ref, dwconv_avx2, dwconv_avx512};

// Depthwise conv of a uint8 [N, C, H, W] input; the output is channels-last.
at::Tensor dwconv(const at::Tensor& x, const at::Tensor& taps, const at::Tensor& colsum, int64_t kh, int64_t kw,
                  const std::vector<int64_t>& stride, const std::vector<int64_t>& padding,
                  const std::vector<int64_t>& dilation, int64_t x_zp, const EpilogueArgs& e) {
  check_cpu(x, "input");
  DwConvParams p;
  at::Tensor xc;
  p.g = conv_geometry(x, xc, kh, kw, stride, padding, dilation, x_zp);
  std::vector<uint8_t> padded;
  if (p.g.ow < kPadCopyBelowWidth && (p.g.ph > 0 || p.g.pw > 0)) pad_input(p.g, padded);
  p.cpad = round_up(std::max<int64_t>(p.g.c, 1), 16);
  if (taps.scalar_type() != at::kInt || taps.numel() != kh * kw * p.cpad || colsum.scalar_type() != at::kInt ||
      colsum.numel() != packed_blocks(p.g.c) * kNB)
    value_error("packed depthwise weight does not match the input's " + std::to_string(p.g.c) + " channels");
  p.epi.b = {nullptr, colsum.data_ptr<int32_t>(), p.g.c, kh * kw, 0, 0};
  EpilogueStorage st;
  setup_epilogue(p.epi, st, e, false, x_zp);
  p.epi.w_zp_nonzero = false;  // folded into the taps
  const at::ScalarType out_type = out_scalar_type(p.epi.epi);
  at::Tensor y =
      at::empty({p.g.batch, p.g.c, p.g.oh, p.g.ow}, x.options().dtype(out_type), at::MemoryFormat::ChannelsLast);
  p.taps = taps.data_ptr<int32_t>();
  p.epi.out = y.data_ptr();
  p.epi.ldc = p.g.c;
  const DwKernel kernel = pick_kernel(kDw);
  const int64_t pixels = p.g.batch * p.g.oh * p.g.ow;
  const int64_t grain = std::max<int64_t>(8, 65536 / std::max<int64_t>(1, p.g.c * kh * kw));
  at::parallel_for(0, pixels, grain, [&](int64_t q0, int64_t q1) { kernel(p, q0, q1); });
  return y;
}

// One group of a conv through the GEMM, its im2col rows gathered while packing: [N * OH * OW,
// the group's out channels], written to `out` when given (a view into the whole output); without
// `out`, the whole conv's channels-last [N, C_out, OH, OW] output.
at::Tensor conv_gemm(const at::Tensor& x, const at::Tensor& packed, const at::Tensor& colsum, int64_t n, int64_t k,
                     int64_t wmin, int64_t wmax, int64_t kh, int64_t kw, const std::vector<int64_t>& stride,
                     const std::vector<int64_t>& padding, const std::vector<int64_t>& dilation, int64_t c0,
                     int64_t x_zp, const EpilogueArgs& e, const std::optional<at::Tensor>& out) {
  check_cpu(x, "input");
  at::Tensor xc;
  const ConvGeometry g = conv_geometry(x, xc, kh, kw, stride, padding, dilation, x_zp);
  if (k % (kh * kw) != 0 || c0 < 0 || c0 + k / (kh * kw) > g.c)
    value_error("the packed weight's K does not match kh * kw * channels of a group of the input");
  Int8GemmParams p;
  set_packed(p, packed, colsum, n, k, wmin, wmax);
  EpilogueStorage st;
  setup_epilogue(p, st, e, false, x_zp);
  p.m = g.batch * g.oh * g.ow;
  if (kh == 1 && kw == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0 && k == g.c) {
    p.a = g.x;  // a 1x1 conv over every channel: the channels-last pixels are the GEMM's rows
    p.a_rs = g.c;
    p.a_cs = 1;
  } else {
    p.conv = &g;
    p.conv_c0 = c0;
  }
  if (out) {
    at::Tensor y = gemm_output(p, out, x.options());
    run_gemm(p);
    return y;
  }
  // The whole conv (one group spanning every channel): a channels-last [N, C_out, OH, OW] output.
  at::Tensor y = at::empty({g.batch, n, g.oh, g.ow}, x.options().dtype(out_scalar_type(p.epi)),
                           at::MemoryFormat::ChannelsLast);
  gemm_output(p, y.permute({0, 2, 3, 1}).reshape({p.m, n}), x.options());
  run_gemm(p);
  return y;
}

using QcKernel = void (*)(const QConvertParams&, int64_t, int64_t);
constexpr QcKernel kQuantize[] = {quantize_ref, quantize_avx2, quantize_avx512};
constexpr QcKernel kDequantize[] = {dequantize_ref, dequantize_avx2, dequantize_avx512};

// Quantize (x float -> uint8 / int8) or dequantize (x integer -> float32) with one scale and zero
// point per channel of `axis` (one in all when axis < 0); the output keeps x's memory layout.
at::Tensor qconvert(const at::Tensor& x, const float* scale, const float* zp, int64_t axis, int64_t qmin,
                    int64_t qmax, bool quantize, bool q_signed) {
  check_cpu(x, "input");
  QConvertParams p;
  if (quantize) p.dtype = check_float_input(x, "input");
  p.q_signed = quantize ? q_signed : x.scalar_type() == at::kChar;
  const at::Tensor y = quantize ? quantize_output(x, qmin, qmax, q_signed) : dequantize_output(x);
  p.it = make_strided(walk_order(x, axis), x, y, axis, &p.ch_dim);
  p.x = x.data_ptr();
  p.y = y.data_ptr();
  p.scale = scale;
  p.zero_point = zp;
  p.quant_min = static_cast<float>(qmin);
  p.quant_max = static_cast<float>(qmax);
  const QcKernel k = pick_kernel(quantize ? kQuantize : kDequantize);
  parallel_blocks(x.numel(), [&](int64_t b, int64_t e) { k(p, b, e); });
  return y;
}

at::Tensor quantize_per_tensor(const at::Tensor& x, double scale, int64_t zp, int64_t qmin, int64_t qmax,
                               bool q_signed) {
  check_scale(scale, "scale");
  check_zero_point_in_range(zp, qmin, qmax, "zero_point");
  const float s = static_cast<float>(scale), z = static_cast<float>(zp);
  return qconvert(x, &s, &z, -1, qmin, qmax, true, q_signed);
}

at::Tensor dequantize_per_tensor(const at::Tensor& q, double scale, int64_t zp) {
  const float s = static_cast<float>(scale), z = static_cast<float>(zp);
  return qconvert(q, &s, &z, -1, 0, 0, false, false);
}

// Per-channel scale (float32) and integer zero point (int32) as float vectors, range-checked.
std::pair<at::Tensor, at::Tensor> channel_qparams(const at::Tensor& x, const at::Tensor& scale,
                                                  const at::Tensor& zero_point, int64_t axis) {
  check_per_channel_qparams(x, scale, zero_point, axis, /*float_zp_ok=*/false);
  const at::Tensor s = scale.to(at::kFloat).contiguous();
  for (int64_t c = 0; c < s.numel(); ++c) check_scale(s.data_ptr<float>()[c], "scale");
  return {s, zero_point.to(at::kFloat).contiguous()};
}

at::Tensor quantize_per_channel(const at::Tensor& x, const at::Tensor& scale, const at::Tensor& zero_point,
                                int64_t axis, int64_t qmin, int64_t qmax, bool q_signed) {
  const auto [s, z] = channel_qparams(x, scale, zero_point, axis);
  for (int64_t c = 0; c < z.numel(); ++c)
    check_zero_point_in_range(static_cast<int64_t>(z.data_ptr<float>()[c]), qmin, qmax, "zero_point");
  return qconvert(x, s.data_ptr<float>(), z.data_ptr<float>(), axis, qmin, qmax, true, q_signed);
}

at::Tensor dequantize_per_channel(const at::Tensor& q, const at::Tensor& scale, const at::Tensor& zero_point,
                                  int64_t axis) {
  const auto [s, z] = channel_qparams(q, scale, zero_point, axis);
  return qconvert(q, s.data_ptr<float>(), z.data_ptr<float>(), axis, 0, 0, false, false);
}

using QeKernel = void (*)(const QElementwiseParams&, int64_t, int64_t);
constexpr QeKernel kElementwise[] = {qelementwise_ref, qelementwise_avx2, qelementwise_avx512};

// y = quantize(op(dequantize(a), dequantize(b))) for uint8 a and b (b broadcast to a's shape; ignored
// by "requant"); the output has a's layout (contiguous when a is not dense).
at::Tensor elementwise(const std::string& op, const at::Tensor& input, double sa, int64_t za,
                       const std::optional<at::Tensor>& other, double sb, int64_t zb, double sy, int64_t zy,
                       int64_t qmin, int64_t qmax) {
  check_cpu(input, "input");
  if (other) check_cpu(*other, "other");
  const ElementwiseArgs e = elementwise_args(op, input, sa, za, other, sb, zb, sy, zy, qmin, qmax);
  const QeKernel k = pick_kernel(kElementwise);
  parallel_blocks(e.a.numel(), [&](int64_t b0, int64_t b1) { k(e.p, b0, b1); });
  return e.y;
}

}  // namespace

void bind_int8(pybind11::module_& m) {
  using namespace pybind11::literals;
  pybind11::class_<EpilogueArgs>(m, "Int8Epilogue")
      .def(pybind11::init<std::optional<at::Tensor>, std::optional<at::Tensor>, std::optional<at::Tensor>, double,
                          double, int64_t, int64_t, int64_t, bool, std::string>(),
           "weight_scale"_a = pybind11::none(), "weight_zero_point"_a = pybind11::none(), "bias"_a = pybind11::none(),
           "input_scale"_a = 1.0, "output_scale"_a = 1.0, "output_zero_point"_a = 0, "output_quant_min"_a = 0,
           "output_quant_max"_a = 255, "relu"_a = false, "out_dtype"_a = "int32");
  m.def("int8_pack_weight", &pack_weight, "weight"_a);
  m.def("int8_gemm", &gemm, "input"_a, "packed"_a, "colsum"_a, "n"_a, "k"_a, "wmin"_a, "wmax"_a,
        "input_zero_point"_a, "epilogue"_a, "out"_a = pybind11::none());
  m.def("int8_conv_gemm", &conv_gemm, "input"_a, "packed"_a, "colsum"_a, "n"_a, "k"_a, "wmin"_a, "wmax"_a, "kh"_a,
        "kw"_a, "stride"_a, "padding"_a, "dilation"_a, "channel_offset"_a, "input_zero_point"_a, "epilogue"_a,
        "out"_a);
  m.def("int8_pack_dw_weight", &pack_dw, "weight"_a, "weight_zero_point"_a);
  m.def("int8_dwconv", &dwconv, "input"_a, "taps"_a, "colsum"_a, "kh"_a, "kw"_a, "stride"_a, "padding"_a,
        "dilation"_a, "input_zero_point"_a, "epilogue"_a);
  m.def("quantize_per_tensor", &quantize_per_tensor, "input"_a, "scale"_a, "zero_point"_a, "quant_min"_a,
        "quant_max"_a, "signed"_a);
  m.def("quantize_per_channel", &quantize_per_channel, "input"_a, "scale"_a, "zero_point"_a, "axis"_a,
        "quant_min"_a, "quant_max"_a, "signed"_a);
  m.def("dequantize_per_tensor", &dequantize_per_tensor, "input"_a, "scale"_a, "zero_point"_a);
  m.def("dequantize_per_channel", &dequantize_per_channel, "input"_a, "scale"_a, "zero_point"_a, "axis"_a);
  m.def("int8_elementwise", &elementwise, "op"_a, "input"_a, "input_scale"_a, "input_zero_point"_a, "other"_a,
        "other_scale"_a, "other_zero_point"_a, "output_scale"_a, "output_zero_point"_a, "quant_min"_a,
        "quant_max"_a);
  m.def("int8_gemm_isa", [] { return std::string(isa_name(dispatch_isa(Isa::Amx))); });
  m.def("int8_ops_isa", [] { return std::string(isa_name(dispatch_isa(Isa::Avx512))); });
}

}  // namespace fakequant
