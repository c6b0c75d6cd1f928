// int8_gemm_sm90.h — the Hopper (wgmma) int8 GEMM that launch_int8_gemm picks on sm_90a builds.
#pragma once

#include <cuda_runtime_api.h>

#include "cuda_params.h"

namespace fakequant {

// Whether this build holds the sm_90a kernel (FAKEQUANT_SM90A) and the driver encodes tensor maps.
bool int8_gemm_sm90_built();
// Whether p's operands meet TMA's rules on top of the 16-byte alignment that launch_int8_gemm checks
// for every tensor-core kernel first (K > 0, rows at least K bytes apart, int32 coordinates).
bool int8_gemm_sm90_fits(const CudaInt8GemmParams& p);
// The kernel on at most `sms` persistent CTAs; p's workspace already holds what the epilogue reads.
cudaError_t launch_int8_gemm_sm90(const CudaInt8GemmParams& p, int sms, cudaStream_t stream);

}  // namespace fakequant
