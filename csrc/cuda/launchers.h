// launchers.h — torch-free entry points of the CUDA kernels: enqueue on `stream`, return the launch error.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "../cpu/qelementwise.h"
#include "cuda_params.h"

namespace fakequant {

// fake_quant.cu: forward (y and the one-bit mask, element i of p.fq.it owns bit i) and dx = dy * mask.
cudaError_t launch_fake_quant(const CudaFakeQuantParams& p, cudaStream_t stream);
cudaError_t launch_mask_grad(const MaskGradParams& p, cudaStream_t stream);

// lsq.cu: out[c] = zero point used by the learnable forward (clamp(round half even(zp[c]))), and the
// backward (dx, dscale, dzero_point) with fixed-order block reductions (deterministic).
cudaError_t launch_lsq_round_zero_point(const float* zero_point, float* out, int64_t n, float quant_min,
                                        float quant_max, cudaStream_t stream);
int64_t lsq_workspace_floats(const Strided& it, int64_t channels);
cudaError_t launch_lsq_backward(const CudaLsqGradParams& p, cudaStream_t stream);

// fused_obs.cu: min/max of x, moving-average update and qparams, all on the device.
int64_t fused_workspace_floats(const Strided& it, int64_t channels);
cudaError_t launch_fused_observe(const CudaFusedObsParams& p, cudaStream_t stream);

// int8_gemm.cu: wgmma (sm_90a builds on 9.0 devices) or mma.sync (sm_80+) tensor cores where the
// operands allow 16-byte copies, a dp4a kernel otherwise and on older GPUs; p.kernels caps the choice.
int64_t int8_gemm_workspace_ints(const CudaInt8GemmParams& p);
cudaError_t launch_int8_gemm(const CudaInt8GemmParams& p, cudaStream_t stream);
// Which kernel launch_int8_gemm would pick for p on the current device ("wgmma", "mma" or "dp4a").
const char* int8_gemm_kernel_name(const CudaInt8GemmParams& p);

// qops.cu: the int8 modules' elementwise pieces and depthwise conv.
cudaError_t launch_quantize(const CudaQConvertParams& p, cudaStream_t stream);
cudaError_t launch_dequantize(const CudaQConvertParams& p, cudaStream_t stream);
// Elements [0, n) of p's contiguous operands (the CPU kernels' element rule).
cudaError_t launch_qelementwise(const QElementwiseParams& p, int64_t n, cudaStream_t stream);
cudaError_t launch_dwconv(const CudaDwConvParams& p, cudaStream_t stream);

}  // namespace fakequant
