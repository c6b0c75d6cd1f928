// lsq.cu — CUDA learnable (LSQ) fake quant: forward zero-point rounding and the one-pass backward with
// deterministic two-stage reductions of the scale / zero-point gradients (no float atomics).
//
// The forward is launch_lsq_round_zero_point followed by launch_fake_quant. The backward gives
// every block a fixed range of one channel's elements: each thread sums its elements in order, the
// block reduces in a fixed tree into the workspace, and one block per channel then sums those
// partials in a fixed order. The partition depends only on the shape, so results are reproducible.
#include "../cpu/lsq.h"
#include "common.cuh"
#include "launchers.h"

namespace fakequant {
namespace cuda {
namespace {

constexpr int kItems = 8;                          // elements per thread per block
constexpr int64_t kChunk = int64_t{kThreads} * kItems;  // elements per block

__global__ void round_zero_point_kernel(const float* zp, float* out, int64_t n, float qmin, float qmax) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] = lsq_zero_point(zp[i], qmin, qmax, false);
}

// Block b handles chunk (b % nchunks) of channel (b / nchunks); writes its (dscale, dzero_point) partials.
template <DType T>
__global__ void __launch_bounds__(kThreads) lsq_grad_kernel(CudaLsqGradParams p, Layout l, int64_t nchunks) {
  using E = Elem<T>;
  using S = typename E::S;
  const int64_t per_channel = l.numel / p.channels;
  const int64_t c = blockIdx.x / nchunks, chunk = blockIdx.x % nchunks;
  const int64_t begin = c * per_channel + chunk * kChunk;
  const int64_t end = min(begin + kChunk, (c + 1) * per_channel);
  const float s = p.scale[c], zp = lsq_zero_point(p.zero_point[c], p.quant_min, p.quant_max, p.per_tensor);
  const S* x = static_cast<const S*>(p.x);
  const S* dy = static_cast<const S*>(p.dy);
  S* dx = static_cast<S*>(p.dx);
  float ds = 0.f, dz = 0.f;
#pragma unroll
  for (int k = 0; k < kItems; ++k) {
    const int64_t lin = begin + k * kThreads + threadIdx.x;
    if (lin < end) {
      const Pos pos = locate(l, lin, -1);
      const LsqGrad<float> g = lsq_grad_element<float>(E::load(x[pos.in]), E::load(dy[pos.in]), s, zp, p.quant_min,
                                                       p.quant_max, p.grad_factor);
      dx[pos.out] = E::store(g.dx);
      ds += g.ds;
      dz += g.dz;
    }
  }
  ds = block_reduce(ds, Sum{}, 0.f);
  dz = block_reduce(dz, Sum{}, 0.f);
  if (threadIdx.x == 0) {
    p.workspace[2 * blockIdx.x] = ds;
    p.workspace[2 * blockIdx.x + 1] = dz;
  }
}

// One block per channel sums that channel's partials in a fixed order.
__global__ void __launch_bounds__(kThreads) lsq_finish_kernel(CudaLsqGradParams p, int64_t nchunks) {
  const int64_t c = blockIdx.x;
  const float* w = p.workspace + 2 * c * nchunks;
  float ds = 0.f, dz = 0.f;
  for (int64_t i = threadIdx.x; i < nchunks; i += kThreads) {
    ds += w[2 * i];
    dz += w[2 * i + 1];
  }
  ds = block_reduce(ds, Sum{}, 0.f);
  dz = block_reduce(dz, Sum{}, 0.f);
  if (threadIdx.x == 0) {
    p.dscale[c] = ds;
    p.dzero_point[c] = dz;
  }
}

}  // namespace
}  // namespace cuda

cudaError_t launch_lsq_round_zero_point(const float* zero_point, float* out, int64_t n, float quant_min,
                                        float quant_max, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  const int64_t blocks = cuda::ceil_div(n, cuda::kThreads);
  if (blocks > cuda::kMaxBlocks) return cudaErrorInvalidValue;
  cuda::round_zero_point_kernel<<<static_cast<unsigned>(blocks), cuda::kThreads, 0, stream>>>(zero_point, out, n,
                                                                                             quant_min, quant_max);
  return cudaGetLastError();
}

int64_t lsq_workspace_floats(const Strided& it, int64_t channels) {
  return 2 * channels * cuda::chunks_per_channel(it, channels, cuda::kChunk);
}

cudaError_t launch_lsq_backward(const CudaLsqGradParams& p, cudaStream_t stream) {
  if (p.channels < 1) return cudaErrorInvalidValue;
  const cuda::Layout l = cuda::make_layout(p.it);
  if (l.numel % p.channels != 0) return cudaErrorInvalidValue;
  const int64_t nchunks = cuda::chunks_per_channel(p.it, p.channels, cuda::kChunk);
  const int64_t blocks = p.channels * nchunks;
  if (blocks > cuda::kMaxBlocks) return cudaErrorInvalidValue;
  const unsigned b = static_cast<unsigned>(blocks);
  switch (p.dtype) {
    case DType::F32: cuda::lsq_grad_kernel<DType::F32><<<b, cuda::kThreads, 0, stream>>>(p, l, nchunks); break;
    case DType::F16: cuda::lsq_grad_kernel<DType::F16><<<b, cuda::kThreads, 0, stream>>>(p, l, nchunks); break;
    case DType::BF16: cuda::lsq_grad_kernel<DType::BF16><<<b, cuda::kThreads, 0, stream>>>(p, l, nchunks); break;
    default: return cudaErrorInvalidValue;
  }
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return e;
  cuda::lsq_finish_kernel<<<static_cast<unsigned>(p.channels), cuda::kThreads, 0, stream>>>(p, nchunks);
  return cudaGetLastError();
}

}  // namespace fakequant
