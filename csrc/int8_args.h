// int8_args.h — argument handling shared by the CPU and CUDA int8 bindings: checks, layouts, kernel params.
#pragma once

#include <torch/extension.h>

#include <optional>
#include <string>
#include <vector>

#include "cpu/conv_geometry.h"
#include "cpu/qelementwise.h"

namespace fakequant {

// An activation zero point inside its dtype's range (int8 when is_signed, else uint8).
void check_input_zero_point(int64_t zp, bool is_signed);

// The requantization arguments of the GEMM and the depthwise conv on every device (_C.Int8Epilogue).
struct EpilogueArgs {
  std::optional<at::Tensor> w_scale, w_zp, bias;
  double x_scale, out_scale;
  int64_t out_zp, out_qmin, out_qmax;
  bool relu;
  std::string out_dtype;
};

// Checks e's scalars (scales, output quant range and zero point) and returns its output kind.
Epilogue check_epilogue(const EpilogueArgs& e);
at::ScalarType out_scalar_type(Epilogue epi);

// t (when given) as a contiguous 1-D tensor of n entries of `type` on `device`, else undefined.
at::Tensor column_vector(const std::optional<at::Tensor>& t, const char* name, at::ScalarType type, int64_t n,
                         at::Device device);

// e's per-column vectors for n output columns on `device` (undefined where absent).
struct EpilogueColumns {
  at::Tensor w_scale, w_zp, bias;
};
EpilogueColumns epilogue_columns(const EpilogueArgs& e, int64_t n, at::Device device);

// A conv's geometry over a uint8 [N, C, H, W] input (made channels-last contiguous in *xc); the
// caller checks the device.
ConvGeometry conv_geometry(const at::Tensor& x, at::Tensor& xc, int64_t kh, int64_t kw,
                           const std::vector<int64_t>& stride, const std::vector<int64_t>& padding,
                           const std::vector<int64_t>& dilation, int64_t x_zp);

// Quantize's checks (float input, quant range inside the output dtype's); the output tensor with
// x's layout.
at::Tensor quantize_output(const at::Tensor& x, int64_t quant_min, int64_t quant_max, bool q_signed);
// Dequantize's check (uint8 / int8 input); the float32 output with x's layout.
at::Tensor dequantize_output(const at::Tensor& q);

// y = quantize(op(dequantize(a), dequantize(b))) for "add" / "mul" / "requant": the checked
// params, with a dense, b expanded to a's strides and y allocated like a (all on input's device).
struct ElementwiseArgs {
  QElementwiseParams p;
  at::Tensor a, b, y;
};
ElementwiseArgs elementwise_args(const std::string& op, const at::Tensor& input, double sa, int64_t za,
                                 const std::optional<at::Tensor>& other, double sb, int64_t zb, double sy, int64_t zy,
                                 int64_t qmin, int64_t qmax);

}  // namespace fakequant
