// cuda_params.h — torch-free parameter structs of the CUDA launchers; every pointer is a device pointer.
#pragma once

#include <cstdint>

#include "../cpu/conv_geometry.h"
#include "../params.h"

namespace fakequant {

// Fake quant on the device (forward with bit mask). fq.scale / fq.zero_point may be null: then every
// element uses scale_value / zero_point_value (the per-tensor op with qparams from the host).
struct CudaFakeQuantParams {
  FakeQuantParams fq;
  float scale_value = 1.f, zero_point_value = 0.f;
  const int64_t* enabled = nullptr;  // optional flag (the fused op's fake_quant_on): 0 gives y = x, mask 1
};

// Learnable (LSQ) fake quant backward. `it` walks x and dy (in_stride, equal strides) and dx
// (out_stride); per channel, dim 0 of `it` is the channel dim, so channel c owns the elements
// [c * numel / channels, (c + 1) * numel / channels).
struct CudaLsqGradParams {
  const void* x = nullptr;
  const void* dy = nullptr;
  void* dx = nullptr;
  DType dtype = DType::F32;
  Strided it;
  int64_t channels = 1;                // 1 for per tensor
  const float* scale = nullptr;        // one per channel
  const float* zero_point = nullptr;   // one per channel, unrounded (the learnable parameter)
  bool per_tensor = true;              // zero point rule: (int)clamp(zp + 0.5) per tensor, clamp(round(zp)) per channel
  float quant_min = 0.f, quant_max = 0.f, grad_factor = 1.f;
  float* workspace = nullptr;          // lsq_workspace_floats() floats
  float* dscale = nullptr;             // one per channel
  float* dzero_point = nullptr;        // one per channel
};

// Fused moving-average observer + qparams (the fake quant itself is launch_fake_quant with
// enabled = fake_quant_on and the qparams written here). `it` walks x (in_stride); per channel,
// dim 0 of `it` is the channel dim.
struct CudaFusedObsParams {
  const void* x = nullptr;
  DType dtype = DType::F32;
  Strided it;
  int64_t channels = 1;
  const int64_t* observer_on = nullptr;
  const int64_t* fake_quant_on = nullptr;
  float* running_min = nullptr;        // one per channel, updated in place
  float* running_max = nullptr;
  float* scale = nullptr;              // written when fake_quant_on
  int32_t* zero_point = nullptr;
  float* zero_point_float = nullptr;   // the same zero points as floats, for the fake-quant kernel
  float averaging_const = 0.01f;
  int32_t quant_min = 0, quant_max = 255;
  bool symmetric = false;
  float* workspace = nullptr;          // fused_workspace_floats() floats
};

// The int8 GEMM kernels that may run (FAKEQUANT_CUDA_GEMM), each level allowing those below it:
// dp4a (any GPU, any strides), mma (mma.sync, sm_80+), wgmma (sm_90a build on a 9.0 device, picked
// over mma by shape); WgmmaOnly takes wgmma wherever it can run, whatever the shape.
enum class CudaGemmKernels : int8_t { Dp4a, Mma, Wgmma, WgmmaOnly };

// out[M, N] from acc = sum_k (a - a_zero_point) * (w - w_zero_point[j]) (a int8 or uint8, w int8,
// rows K-contiguous), as the CPU int8 epilogue:
//   Int32: acc
//   U8:    clamp(round((acc + bias[j] / s) * (s / out_scale)) + out_zp, lo, out_quant_max) with
//          s = a_scale * w_scale[j], lo = relu ? max(out_quant_min, out_zp) : out_quant_min
//   F32:   acc * s + bias[j] (relu only with U8)
// Null w_scale / w_zero_point / bias mean 1 / 0 / 0 for every column.
struct CudaInt8GemmParams {
  const void* a = nullptr;
  bool a_unsigned = true;
  int64_t lda = 0;
  const int8_t* w = nullptr;
  int64_t ldw = 0;
  void* out = nullptr;
  int64_t ldo = 0;
  Epilogue out_kind = Epilogue::Int32;
  int64_t M = 0, N = 0, K = 0;
  float a_scale = 1.f;
  int32_t a_zero_point = 0;
  const float* w_scale = nullptr;         // N
  const int32_t* w_zero_point = nullptr;  // N
  const float* bias = nullptr;            // N
  float out_scale = 1.f;
  int32_t out_zero_point = 0, out_quant_min = 0, out_quant_max = 255;
  bool relu = false;
  int32_t* workspace = nullptr;  // int8_gemm_workspace_ints() ints: row sums for the zero-point correction
  CudaGemmKernels kernels = CudaGemmKernels::Wgmma;
};

// Quantize (float -> uint8 / int8, the one quantize primitive) or dequantize (uint8 / int8 ->
// float32 (q - zero_point) * scale) of n elements in memory order, one scale and zero point.
struct CudaQConvertParams {
  const void* x = nullptr;
  void* y = nullptr;
  int64_t n = 0;
  DType dtype = DType::F32;  // quantize: the float input's type
  bool q_signed = false;     // the integer side is int8 (else uint8)
  float scale = 1.f, zero_point = 0.f, quant_min = 0.f, quant_max = 255.f;
};

// Depthwise conv (one output channel per input channel) of g.x [batch, h, w, c] (channels-last
// uint8) into y [batch, oh, ow, c] with the uint8 epilogue of the int8 GEMM:
//   acc = sum_taps (x - x_zp) * (w[c][tap] - w_zero_point[c]), padding reading as x_zp.
struct CudaDwConvParams {
  ConvGeometry g;
  const int8_t* w = nullptr;             // [c][kh * kw]
  const int32_t* w_zero_point = nullptr;  // c
  const float* w_scale = nullptr;         // c
  const float* bias = nullptr;            // c, or null
  uint8_t* y = nullptr;
  float x_scale = 1.f, out_scale = 1.f;
  int32_t out_zero_point = 0, out_lo = 0, out_hi = 255;  // out_lo = max(quant_min, zero point) with ReLU
};

}  // namespace fakequant
