// int8_args.cpp — argument handling shared by the CPU and CUDA int8 bindings (see int8_args.h).
#include "int8_args.h"

#include "checks.h"

namespace fakequant {

void check_input_zero_point(int64_t zp, bool is_signed) {
  if (is_signed ? (zp < -128 || zp > 127) : (zp < 0 || zp > 255))
    value_error("input zero_point (" + std::to_string(zp) + ") is outside the input dtype's range");
}

Epilogue check_epilogue(const EpilogueArgs& e) {
  Epilogue epi;
  if (e.out_dtype == "int32") {
    epi = Epilogue::Int32;
  } else if (e.out_dtype == "uint8") {
    epi = Epilogue::U8;
  } else if (e.out_dtype == "float32") {
    epi = Epilogue::F32;
  } else {
    value_error("out_dtype must be 'int32', 'uint8' or 'float32', got '" + e.out_dtype + "'");
  }
  if (epi != Epilogue::Int32) check_scale(e.x_scale, "input scale");
  if (e.relu && epi != Epilogue::U8) value_error("relu is fused into uint8 outputs only (out_dtype 'uint8')");
  if (epi == Epilogue::U8) {
    check_scale(e.out_scale, "output scale");
    check_quant_range(e.out_qmin, e.out_qmax);
    check_zero_point_in_range(e.out_qmin, 0, 255, "output quant_min");
    check_zero_point_in_range(e.out_qmax, 0, 255, "output quant_max");
    check_zero_point_in_range(e.out_zp, e.out_qmin, e.out_qmax, "output zero_point");
  }
  return epi;
}

at::ScalarType out_scalar_type(Epilogue epi) {
  return epi == Epilogue::U8 ? at::kByte : epi == Epilogue::F32 ? at::kFloat : at::kInt;
}

at::Tensor column_vector(const std::optional<at::Tensor>& t, const char* name, at::ScalarType type, int64_t n,
                         at::Device device) {
  if (!t) return {};
  if (t->device() != device)
    throw std::runtime_error(std::string("fakequant: ") + name + " is on " + t->device().str() + " but the input is on " +
                             device.str() + "; move the module or tensors to one device");
  check_dtype(*t, name, {type});
  check_1d(*t, name, n);
  return t->contiguous();
}

EpilogueColumns epilogue_columns(const EpilogueArgs& e, int64_t n, at::Device device) {
  return {column_vector(e.w_scale, "weight scale", at::kFloat, n, device),
          column_vector(e.w_zp, "weight zero_point", at::kInt, n, device),
          column_vector(e.bias, "bias", at::kFloat, n, device)};
}

ConvGeometry conv_geometry(const at::Tensor& x, at::Tensor& xc, int64_t kh, int64_t kw,
                           const std::vector<int64_t>& stride, const std::vector<int64_t>& padding,
                           const std::vector<int64_t>& dilation, int64_t x_zp) {
  check_dtype(x, "input", {at::kByte});
  check_dim(x, "input", 4);
  check_input_zero_point(x_zp, false);
  if (stride.size() != 2 || padding.size() != 2 || dilation.size() != 2)
    value_error("stride, padding and dilation must have two entries each");
  ConvGeometry g;
  g.batch = x.size(0), g.c = x.size(1), g.h = x.size(2), g.w = x.size(3);
  g.kh = kh, g.kw = kw, g.sh = stride[0], g.sw = stride[1], g.ph = padding[0], g.pw = padding[1];
  g.dh = dilation[0], g.dw = dilation[1];
  if (g.sh < 1 || g.sw < 1 || g.dh < 1 || g.dw < 1 || g.ph < 0 || g.pw < 0 || kh < 1 || kw < 1)
    value_error("stride and dilation must be >= 1, padding >= 0 and the kernel non-empty");
  g.oh = (g.h + 2 * g.ph - g.dh * (kh - 1) - 1) / g.sh + 1;
  g.ow = (g.w + 2 * g.pw - g.dw * (kw - 1) - 1) / g.sw + 1;
  if (g.h + 2 * g.ph < g.dh * (kh - 1) + 1 || g.w + 2 * g.pw < g.dw * (kw - 1) + 1)
    value_error("input is smaller than the (dilated) kernel");
  xc = x.contiguous(at::MemoryFormat::ChannelsLast);
  g.x = xc.data_ptr<uint8_t>();
  g.x_zp = static_cast<int32_t>(x_zp);
  return g;
}

at::Tensor quantize_output(const at::Tensor& x, int64_t qmin, int64_t qmax, bool q_signed) {
  check_float_input(x, "input");
  check_quant_range(qmin, qmax);
  if (q_signed ? (qmin < -128 || qmax > 127) : (qmin < 0 || qmax > 255))
    value_error("quant_min and quant_max must lie in the output dtype's range");
  return at::empty_like(x, x.options().dtype(q_signed ? at::kChar : at::kByte), at::MemoryFormat::Preserve);
}

at::Tensor dequantize_output(const at::Tensor& q) {
  check_dtype(q, "input", {at::kByte, at::kChar});
  return at::empty_like(q, q.options().dtype(at::kFloat), at::MemoryFormat::Preserve);
}

ElementwiseArgs elementwise_args(const std::string& op, const at::Tensor& input, double sa, int64_t za,
                                 const std::optional<at::Tensor>& other, double sb, int64_t zb, double sy, int64_t zy,
                                 int64_t qmin, int64_t qmax) {
  QElementwiseParams p;
  if (op == "add") {
    p.op = QOp::Add;
  } else if (op == "mul") {
    p.op = QOp::Mul;
  } else if (op == "requant") {
    p.op = QOp::Requant;
  } else {
    value_error("op must be 'add', 'mul' or 'requant', got '" + op + "'");
  }
  check_dtype(input, "input", {at::kByte});
  at::Tensor a = input.is_non_overlapping_and_dense() ? input : input.contiguous();
  at::Tensor b;
  if (p.op != QOp::Requant) {
    if (!other) value_error("op '" + op + "' needs a second operand");
    check_dtype(*other, "other", {at::kByte});
    if (!at::is_expandable_to(other->sizes(), a.sizes()))
      value_error("other's shape does not broadcast to input's shape");
    b = other->expand(a.sizes());
    if (b.strides() != a.strides()) b = at::empty_like(a).copy_(b);
    check_scale(sb, "other scale");
    check_input_zero_point(zb, false);
    p.b = b.data_ptr<uint8_t>();
  }
  check_scale(sa, "input scale");
  check_scale(sy, "output scale");
  check_input_zero_point(za, false);
  check_quant_range(qmin, qmax);
  check_zero_point_in_range(qmin, 0, 255, "quant_min");
  check_zero_point_in_range(qmax, 0, 255, "quant_max");
  check_zero_point_in_range(zy, qmin, qmax, "output zero_point");
  at::Tensor y = at::empty_like(a, at::MemoryFormat::Preserve);
  p.a = a.data_ptr<uint8_t>();
  p.y = y.data_ptr<uint8_t>();
  p.sa = static_cast<float>(sa), p.za = static_cast<float>(za);
  p.sb = static_cast<float>(sb), p.zb = static_cast<float>(zb);
  p.sy = static_cast<float>(sy), p.zy = static_cast<float>(zy);
  p.quant_min = static_cast<float>(qmin), p.quant_max = static_cast<float>(qmax);
  return {p, a, b, y};
}

}  // namespace fakequant
