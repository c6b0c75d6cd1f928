// bind_cuda_int8.cpp — the _C.cuda_* int8 functions: GEMM, quantize / dequantize, elementwise ops, depthwise conv.
//
// Same names and arguments as the CPU functions with the "cuda_" prefix where one exists, so the
// Python layer picks a device with fakequant.ops._kernel; the checks are the CPU bindings' own
// (int8_args.h) plus the device checks.
#include <c10/cuda/CUDAGuard.h>

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "../checks.h"
#include "../int8_args.h"
#include "bind_cuda.h"
#include "launchers.h"

namespace fakequant {
namespace {

// The GEMM kernels FAKEQUANT_CUDA_GEMM allows (read on every call, like FAKEQUANT_ISA): dp4a, mma,
// wgmma (the default: picked by shape), or wgmma_only (wgmma wherever it can run).
CudaGemmKernels gemm_kernels_from_env() {
  const char* env = std::getenv("FAKEQUANT_CUDA_GEMM");
  if (env == nullptr || *env == '\0') return CudaGemmKernels::Wgmma;
  const std::string v(env);
  if (v == "dp4a") return CudaGemmKernels::Dp4a;
  if (v == "mma") return CudaGemmKernels::Mma;
  if (v == "wgmma") return CudaGemmKernels::Wgmma;
  if (v == "wgmma_only") return CudaGemmKernels::WgmmaOnly;
  value_error("FAKEQUANT_CUDA_GEMM must be one of dp4a, mma, wgmma, wgmma_only; got '" + v + "'");
}

// a [M, K] (uint8 or int8) and w [N, K] (int8) on one device; rows made K-contiguous.
CudaInt8GemmParams gemm_operands(const at::Tensor& a, const at::Tensor& w, at::Tensor& a_rows, at::Tensor& w_rows) {
  check_same_device({{"a", &a}, {"w", &w}});
  check_cuda(a, "a");
  check_dtype(a, "a", {at::kByte, at::kChar});
  check_dtype(w, "w", {at::kChar});
  if (a.dim() != 2 || w.dim() != 2) value_error("a and w must be 2-D");
  if (a.size(1) != w.size(1))
    value_error("a is [M, K] and w is [N, K]: K differs (" + std::to_string(a.size(1)) + " vs " +
                std::to_string(w.size(1)) + ")");
  a_rows = a.stride(1) == 1 || a.size(1) <= 1 ? a : a.contiguous();
  w_rows = w.stride(1) == 1 || w.size(1) <= 1 ? w : w.contiguous();
  CudaInt8GemmParams p;
  p.a = a_rows.data_ptr();
  p.a_unsigned = a.scalar_type() == at::kByte;
  p.lda = a_rows.stride(0);
  p.w = ptr<int8_t>(w_rows);
  p.ldw = w_rows.stride(0);
  p.M = a.size(0);
  p.N = w.size(0);
  p.K = a.size(1);
  p.kernels = gemm_kernels_from_env();
  return p;
}

at::Tensor int8_mm(const at::Tensor& a, const at::Tensor& w) {
  at::Tensor a_rows, w_rows;
  CudaInt8GemmParams p = gemm_operands(a, w, a_rows, w_rows);
  const c10::cuda::CUDAGuard guard(a.device());
  at::Tensor out = at::empty({p.M, p.N}, a.options().dtype(at::kInt));
  p.out = out.data_ptr();
  p.ldo = p.N;
  check_launch(launch_int8_gemm(p, stream()), "int8 GEMM");
  return out;
}

// The output epilogue (the CPU GEMM's _C.Int8Epilogue) of n columns into p; returns the column
// vectors, which must outlive the launch.
EpilogueColumns set_epilogue(CudaInt8GemmParams& p, const EpilogueArgs& e, int64_t n, const at::Tensor& input) {
  p.out_kind = check_epilogue(e);
  EpilogueColumns cols = epilogue_columns(e, n, input.device());
  p.w_scale = cols.w_scale.defined() ? ptr<float>(cols.w_scale) : nullptr;
  p.w_zero_point = cols.w_zp.defined() ? ptr<int32_t>(cols.w_zp) : nullptr;
  p.bias = cols.bias.defined() ? ptr<float>(cols.bias) : nullptr;
  p.a_scale = static_cast<float>(e.x_scale);
  p.out_scale = static_cast<float>(e.out_scale);
  p.out_zero_point = static_cast<int32_t>(e.out_zp);
  p.out_quant_min = static_cast<int32_t>(e.out_qmin);
  p.out_quant_max = static_cast<int32_t>(e.out_qmax);
  p.relu = e.relu;
  return cols;
}

// epilogue(sum_k (input - input_zero_point) * (w - w_zp)) for a plain int8 weight [N, K] (the CPU
// takes a packed one).
at::Tensor int8_gemm(const at::Tensor& input, const at::Tensor& weight, int64_t input_zero_point,
                     const EpilogueArgs& e) {
  at::Tensor a_rows, w_rows;
  CudaInt8GemmParams p = gemm_operands(input, weight, a_rows, w_rows);
  check_input_zero_point(input_zero_point, !p.a_unsigned);
  const EpilogueColumns cols = set_epilogue(p, e, p.N, input);
  const c10::cuda::CUDAGuard guard(input.device());
  at::Tensor out = at::empty({p.M, p.N}, input.options().dtype(out_scalar_type(p.out_kind)));
  p.out = out.data_ptr();
  p.ldo = p.N;
  p.a_zero_point = static_cast<int32_t>(input_zero_point);
  const at::Tensor sums = at::empty({int8_gemm_workspace_ints(p)}, input.options().dtype(at::kInt));
  p.workspace = ptr<int32_t>(sums);
  check_launch(launch_int8_gemm(p, stream()), "int8 GEMM");
  return out;
}

at::Tensor quantize_per_tensor(const at::Tensor& x, double scale, int64_t zp, int64_t qmin, int64_t qmax,
                               bool q_signed) {
  check_cuda(x, "input");
  check_scale(scale, "scale");
  check_zero_point_in_range(zp, qmin, qmax, "zero_point");
  const c10::cuda::CUDAGuard guard(x.device());
  const at::Tensor xd = x.is_non_overlapping_and_dense() ? x : x.contiguous();
  const at::Tensor y = quantize_output(xd, qmin, qmax, q_signed);
  CudaQConvertParams p;
  p.x = xd.data_ptr();
  p.y = y.data_ptr();
  p.n = xd.numel();
  p.dtype = check_float_input(xd, "input");
  p.q_signed = q_signed;
  p.scale = static_cast<float>(scale);
  p.zero_point = static_cast<float>(zp);
  p.quant_min = static_cast<float>(qmin);
  p.quant_max = static_cast<float>(qmax);
  check_launch(launch_quantize(p, stream()), "quantize");
  return y;
}

at::Tensor dequantize_per_tensor(const at::Tensor& q, double scale, int64_t zp) {
  check_cuda(q, "input");
  const c10::cuda::CUDAGuard guard(q.device());
  const at::Tensor qd = q.is_non_overlapping_and_dense() ? q : q.contiguous();
  const at::Tensor y = dequantize_output(qd);
  CudaQConvertParams p;
  p.x = qd.data_ptr();
  p.y = y.data_ptr();
  p.n = qd.numel();
  p.q_signed = qd.scalar_type() == at::kChar;
  p.scale = static_cast<float>(scale);
  p.zero_point = static_cast<float>(zp);
  check_launch(launch_dequantize(p, stream()), "dequantize");
  return y;
}

at::Tensor elementwise(const std::string& op, const at::Tensor& input, double sa, int64_t za,
                       const std::optional<at::Tensor>& other, double sb, int64_t zb, double sy, int64_t zy,
                       int64_t qmin, int64_t qmax) {
  check_cuda(input, "input");
  if (other) check_same_device({{"input", &input}, {"other", &*other}});
  const c10::cuda::CUDAGuard guard(input.device());
  const ElementwiseArgs e = elementwise_args(op, input, sa, za, other, sb, zb, sy, zy, qmin, qmax);
  check_launch(launch_qelementwise(e.p, e.a.numel(), stream()), "int8 elementwise");
  return e.y;
}

// Depthwise conv of a uint8 [N, C, H, W] input with an int8 weight [C, 1, kh, kw] and a uint8
// epilogue; the output is channels-last.
at::Tensor dwconv(const at::Tensor& x, const at::Tensor& weight, const std::vector<int64_t>& stride,
                  const std::vector<int64_t>& padding, const std::vector<int64_t>& dilation, int64_t x_zp,
                  const EpilogueArgs& e) {
  check_cuda(x, "input");
  check_same_device({{"input", &x}, {"weight", &weight}});
  check_dtype(weight, "weight", {at::kChar});
  check_dim(weight, "weight", 4);
  if (check_epilogue(e) != Epilogue::U8) value_error("the CUDA depthwise conv writes uint8 (out_dtype 'uint8')");
  const c10::cuda::CUDAGuard guard(x.device());
  CudaDwConvParams p;
  at::Tensor xc;
  p.g = conv_geometry(x, xc, weight.size(2), weight.size(3), stride, padding, dilation, x_zp);
  if (weight.size(0) != p.g.c || weight.size(1) != 1)
    value_error("a depthwise weight is [C, 1, kh, kw] for an input of C channels");
  const at::Tensor w = weight.contiguous();
  const EpilogueColumns cols = epilogue_columns(e, p.g.c, x.device());
  if (!cols.w_scale.defined() || !cols.w_zp.defined())
    value_error("the depthwise conv's epilogue needs weight_scale and weight_zero_point");
  at::Tensor y = at::empty({p.g.batch, p.g.c, p.g.oh, p.g.ow}, x.options(), at::MemoryFormat::ChannelsLast);
  p.w = ptr<int8_t>(w);
  p.w_zero_point = ptr<int32_t>(cols.w_zp);
  p.w_scale = ptr<float>(cols.w_scale);
  p.bias = cols.bias.defined() ? ptr<float>(cols.bias) : nullptr;
  p.y = ptr<uint8_t>(y);
  p.x_scale = static_cast<float>(e.x_scale);
  p.out_scale = static_cast<float>(e.out_scale);
  p.out_zero_point = static_cast<int32_t>(e.out_zp);
  p.out_lo = static_cast<int32_t>(e.relu ? std::max(e.out_qmin, e.out_zp) : e.out_qmin);
  p.out_hi = static_cast<int32_t>(e.out_qmax);
  check_launch(launch_dwconv(p, stream()), "int8 depthwise conv");
  return y;
}

}  // namespace

void bind_cuda_int8(pybind11::module_& m) {
  using namespace pybind11::literals;
  m.def("cuda_int8_mm", &int8_mm, "a"_a, "w"_a);
  m.def("cuda_int8_gemm", &int8_gemm, "input"_a, "weight"_a, "input_zero_point"_a, "epilogue"_a);
  m.def("cuda_int8_mm_kernel", [](const at::Tensor& a, const at::Tensor& w) {
    at::Tensor a_rows, w_rows;
    const CudaInt8GemmParams p = gemm_operands(a, w, a_rows, w_rows);
    const c10::cuda::CUDAGuard guard(a.device());
    return std::string(int8_gemm_kernel_name(p));
  }, "a"_a, "w"_a);
  m.def("cuda_quantize_per_tensor", &quantize_per_tensor, "input"_a, "scale"_a, "zero_point"_a, "quant_min"_a,
        "quant_max"_a, "signed"_a);
  m.def("cuda_dequantize_per_tensor", &dequantize_per_tensor, "input"_a, "scale"_a, "zero_point"_a);
  m.def("cuda_int8_elementwise", &elementwise, "op"_a, "input"_a, "input_scale"_a, "input_zero_point"_a, "other"_a,
        "other_scale"_a, "other_zero_point"_a, "output_scale"_a, "output_zero_point"_a, "quant_min"_a,
        "quant_max"_a);
  m.def("cuda_int8_dwconv", &dwconv, "input"_a, "weight"_a, "stride"_a, "padding"_a, "dilation"_a,
        "input_zero_point"_a, "epilogue"_a);
}

}  // namespace fakequant
