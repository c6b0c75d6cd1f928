// bind_int8.cpp — tensors to the int8 GEMM kernels: weight packing, int8_mm and the fused
// requantizing GEMM behind the int8 Linear / Conv2d modules; threads split rows and column blocks.
#include <ATen/Parallel.h>

#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "bind.h"
#include "checks.h"
#include "cpu/int8_gemm.h"
#include "dispatch.h"

namespace fakequant {
namespace {

using GemmKernel = void (*)(const Int8GemmParams&, int64_t, int64_t, int64_t, int64_t);
constexpr GemmKernel kGemm[] = {int8_gemm_ref, int8_gemm_avx2, int8_gemm_vnni, int8_gemm_amx};

constexpr int64_t kRowGrain = 48;        // fewest rows a thread takes when rows are split
constexpr int64_t kSerialWork = 1 << 18; // multiply-adds below which one thread runs it all

// Rows [0, m) in `parts` nearly equal pieces whose starts are multiples of 16 (AMX tile rows).
int64_t row_split(int64_t m, int64_t parts, int64_t i) {
  if (i >= parts) return m;
  return std::min(m, round_up(m * i / parts, 16));
}

// Splits the output over threads: rows first, column blocks when there are too few rows.
void run_gemm(const Int8GemmParams& p) {
  const int64_t nblk = packed_blocks(p.b.n);
  if (p.m == 0 || nblk == 0) return;
  const GemmKernel kernel = pick_kernel(kGemm);
  const int64_t work = p.m * nblk * kNB * std::max<int64_t>(p.b.k, 1);
  const int64_t threads = work < kSerialWork ? 1 : at::get_num_threads();
  const int64_t mparts = std::max<int64_t>(1, std::min(threads, p.m / kRowGrain));
  const int64_t nparts = std::min(nblk, (threads + mparts - 1) / mparts);
  const auto unit = [&](int64_t u) {
    const int64_t mi = u / nparts, ni = u % nparts;
    kernel(p, row_split(p.m, mparts, mi), row_split(p.m, mparts, mi + 1), nblk * ni / nparts,
           nblk * (ni + 1) / nparts);
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

Epilogue parse_out_dtype(const std::string& s) {
  if (s == "int32") return Epilogue::Int32;
  if (s == "uint8") return Epilogue::U8;
  if (s == "float32") return Epilogue::F32;
  value_error("out_dtype must be 'int32', 'uint8' or 'float32', got '" + s + "'");
}

const at::ScalarType kOutType[] = {at::kInt, at::kByte, at::kFloat};

// A per-column float32 / int32 vector of the weight's N entries, contiguous.
at::Tensor column_vector(const std::optional<at::Tensor>& t, const char* name, at::ScalarType type, int64_t n) {
  if (!t) return {};
  check_cpu(*t, name);
  check_dtype(*t, name, {type});
  check_1d(*t, name, n);
  return t->contiguous();
}

// out = epilogue(a @ w.T) for a u8/s8 [M, K] and a packed int8 weight [N, K].
at::Tensor gemm(const at::Tensor& a, const at::Tensor& packed, const at::Tensor& colsum, int64_t n, int64_t k,
                int64_t wmin, int64_t wmax, int64_t a_zp, const std::optional<at::Tensor>& w_scale,
                const std::optional<at::Tensor>& w_zp, const std::optional<at::Tensor>& bias, double x_scale,
                double out_scale, int64_t out_zp, bool relu, const std::string& out_dtype,
                const std::optional<at::Tensor>& out) {
  check_cpu(a, "input");
  check_dtype(a, "input", {at::kByte, at::kChar});
  check_dim(a, "input", 2);
  check_dtype(packed, "packed weight", {at::kChar});
  check_dtype(colsum, "column sums", {at::kInt});
  if (packed.numel() != packed_bytes(n, k) || colsum.numel() != packed_blocks(n) * kNB || !packed.is_contiguous() ||
      !colsum.is_contiguous())
    value_error("packed weight does not match its shape [" + std::to_string(n) + ", " + std::to_string(k) + "]");
  if (a.size(1) != k)
    value_error("input has " + std::to_string(a.size(1)) + " columns but the weight has K = " + std::to_string(k));
  const bool a_signed = a.scalar_type() == at::kChar;
  if (a_signed ? (a_zp < -128 || a_zp > 127) : (a_zp < 0 || a_zp > 255))
    value_error("input zero_point (" + std::to_string(a_zp) + ") is outside the input dtype's range");
  const Epilogue epi = parse_out_dtype(out_dtype);
  if (epi != Epilogue::Int32) check_scale(x_scale, "input scale");
  if (epi == Epilogue::U8) {
    check_scale(out_scale, "output scale");
    check_zero_point_in_range(out_zp, 0, 255, "output zero_point");
  }
  const at::Tensor ws = column_vector(w_scale, "weight scale", at::kFloat, n);
  const at::Tensor wz = column_vector(w_zp, "weight zero_point", at::kInt, n);
  const at::Tensor bs = column_vector(bias, "bias", at::kFloat, n);
  const int64_t m = a.size(0);
  at::Tensor y;
  if (out) {
    y = *out;
    check_cpu(y, "out");
    check_dtype(y, "out", {kOutType[static_cast<int>(epi)]});
    if (y.dim() != 2 || y.size(0) != m || y.size(1) != n || (n > 1 && y.stride(1) != 1))
      value_error("out must be a [" + std::to_string(m) + ", " + std::to_string(n) + "] view with unit column stride");
  } else {
    y = at::empty({m, n}, a.options().dtype(kOutType[static_cast<int>(epi)]));
  }

  Int8GemmParams p;
  p.a = a.data_ptr();
  p.m = m;
  p.a_rs = a.stride(0);
  p.a_cs = a.stride(1);
  p.a_signed = a_signed;
  p.b = {packed.data_ptr<int8_t>(), colsum.data_ptr<int32_t>(), n, k, static_cast<int32_t>(wmin),
         static_cast<int32_t>(wmax)};
  const int64_t npad = packed_blocks(n) * kNB;
  std::vector<int32_t> ivec(2 * npad);
  std::vector<float> fvec(2 * npad);
  p.v = {ivec.data(), ivec.data() + npad, fvec.data(), fvec.data() + npad};
  const int32_t* wz_ptr = wz.defined() ? wz.data_ptr<int32_t>() : nullptr;
  prepare_epilogue(p.b, a_signed, static_cast<int32_t>(a_zp), ws.defined() ? ws.data_ptr<float>() : nullptr, wz_ptr,
                   bs.defined() ? bs.data_ptr<float>() : nullptr, static_cast<float>(x_scale),
                   static_cast<float>(out_scale), epi, npad, p.v);
  p.w_zp_nonzero = wz_ptr && std::any_of(wz_ptr, wz_ptr + n, [](int32_t z) { return z != 0; });
  p.epi = epi;
  p.out = y.data_ptr();
  p.ldc = y.stride(0);
  p.out_zp = static_cast<int32_t>(out_zp);
  p.out_min = relu ? p.out_zp : 0;
  run_gemm(p);
  return y;
}

}  // namespace

void bind_int8(pybind11::module_& m) {
  using namespace pybind11::literals;
  m.def("int8_pack_weight", &pack_weight, "weight"_a);
  m.def("int8_gemm", &gemm, "input"_a, "packed"_a, "colsum"_a, "n"_a, "k"_a, "wmin"_a, "wmax"_a,
        "input_zero_point"_a, "weight_scale"_a, "weight_zero_point"_a, "bias"_a, "input_scale"_a, "output_scale"_a,
        "output_zero_point"_a, "relu"_a, "out_dtype"_a, "out"_a = pybind11::none());
  m.def("int8_gemm_isa", [] { return std::string(isa_name(dispatch_isa(Isa::Amx))); });
}

}  // namespace fakequant
