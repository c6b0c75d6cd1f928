// params.h — torch-free structs carrying pointers, shapes and qparams from the binding to the kernels.
#pragma once

#include <cstdint>

// Marks the scalar rules that host kernels and CUDA kernels share (one definition of the numerics).
#ifdef __CUDACC__
#define FQ_HD __host__ __device__
#else
#define FQ_HD
#endif

namespace fakequant {

enum class DType : int32_t { F32 = 0, F16 = 1, BF16 = 2, F64 = 3 };

constexpr int kMaxDims = 8;

// An iteration space of up to kMaxDims dims, outermost first, with element strides of one input
// and one output. Elements are numbered row-major over `size`; element i owns bit i of a bit mask.
struct Strided {
  int ndim = 0;
  int64_t size[kMaxDims] = {};
  int64_t in_stride[kMaxDims] = {};
  int64_t out_stride[kMaxDims] = {};
};

// How the zero point enters: torch adds an integer zero point after rounding, and a float one
// (per-channel op only) before rounding.
enum class ZeroPointMode : int32_t { RoundThenAdd = 0, AddThenRound = 1 };

struct FakeQuantParams {
  const void* x = nullptr;
  void* y = nullptr;
  uint64_t* mask = nullptr;        // one bit per element (1 = gradient passes); may be null
  DType dtype = DType::F32;
  Strided it;
  int ch_dim = -1;                 // dim of `it` that indexes channels; -1 for per tensor
  const float* scale = nullptr;    // one per channel (one in all for per tensor)
  const float* zero_point = nullptr;  // as float: exact for every integer zero point we accept
  ZeroPointMode zp_mode = ZeroPointMode::RoundThenAdd;
  bool int64_cast = false;         // torch's per-channel op casts to int64: NaN/inf/huge -> quant_min
  float quant_min = 0.f, quant_max = 0.f;
  bool relu = false;               // CPU kernels: quantize relu(x) (ReLU fused in front); mask also needs x > 0
  uint64_t* relu_mask = nullptr;   // with relu and mask: bit i = !(x_i <= 0), where torch's ReLU passes a gradient
};

// What the int8 GEMM and depthwise conv write: raw int32 sums, requantized uint8 (fbgemm's
// ReQuantizeOutput) or float32 (fbgemm's ReQuantizeForFloat).
enum class Epilogue : int32_t { Int32 = 0, U8 = 1, F32 = 2 };

// dx = dy * mask over the same iteration order as the forward that wrote the mask.
struct MaskGradParams {
  const void* dy = nullptr;
  void* dx = nullptr;
  const uint64_t* mask = nullptr;
  DType dtype = DType::F32;
  Strided it;
  const uint64_t* relu_mask = nullptr;  // CPU kernels, fused ReLU: dx = +0 where its bit is clear (torch's ReLU backward)
};

// LSQ backward: one pass writing dx = dy * mask and adding each element's dscale / dzero_point
// terms to per-channel sums. x, dy and dx share the layout `it` (in_stride).
struct LsqGradParams {
  const void* x = nullptr;
  const void* dy = nullptr;
  void* dx = nullptr;
  DType dtype = DType::F32;
  Strided it;
  int ch_dim = -1;                   // dim of `it` that indexes channels; -1 for per tensor
  const float* scale = nullptr;      // one per channel
  const float* zero_point = nullptr; // the integer-valued zero point torch's backward uses
  float quant_min = 0.f, quant_max = 0.f;
  float grad_factor = 1.f;
};

// Per-channel minimum and maximum of x (NaN for a channel that holds a NaN), reading in_stride.
struct MinMaxParams {
  const void* x = nullptr;
  DType dtype = DType::F32;
  Strided it;
  int ch_dim = -1;                   // -1: one channel
};

}  // namespace fakequant
