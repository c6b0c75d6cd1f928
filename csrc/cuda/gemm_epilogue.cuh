// gemm_epilogue.cuh — the output step every CUDA int8 GEMM kernel shares: zero-point correction, requantization, store.
#pragma once

#include "cuda_params.h"
#include "requant.h"

namespace fakequant {
namespace cuda {

// Zero points to correct for: the row sums are then in the workspace.
FQ_HD inline bool has_zero_points(const CudaInt8GemmParams& p) { return p.a_zero_point != 0 || p.w_zero_point; }

// Writes element (r, c) of the output from its raw int32 product (nothing outside M x N).
__device__ __forceinline__ void store_out(const CudaInt8GemmParams& p, int64_t r, int64_t c, int32_t raw) {
  if (r >= p.M || c >= p.N) return;
  const int64_t o = r * p.ldo + c;
  const int32_t acc = has_zero_points(p) ? zero_point_corrected(raw, p.workspace[r], p.workspace[p.M + c],
                                                                p.a_zero_point, p.w_zero_point ? p.w_zero_point[c] : 0,
                                                                p.K)
                                         : raw;
  if (p.out_kind == Epilogue::Int32) {
    static_cast<int32_t*>(p.out)[o] = acc;
    return;
  }
  const float sw = p.w_scale ? p.w_scale[c] : 1.f, b = p.bias ? p.bias[c] : 0.f;
  if (p.out_kind == Epilogue::F32) {
    static_cast<float*>(p.out)[o] = requantize_float(acc, p.a_scale, sw, b);
  } else {
    const int32_t lo = p.relu && p.out_zero_point > p.out_quant_min ? p.out_zero_point : p.out_quant_min;
    static_cast<uint8_t*>(p.out)[o] =
        requantize_channel(acc, p.a_scale, sw, b, p.out_scale, p.out_zero_point, lo, p.out_quant_max);
  }
}

}  // namespace cuda
}  // namespace fakequant
