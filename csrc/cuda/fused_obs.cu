// fused_obs.cu — CUDA fused moving-average observer: min/max, running update and qparams on the device.
//
// Two kernels and no host synchronisation: blocks reduce fixed ranges of one channel's elements to
// (min, max) partials, then one warp per channel combines them, updates running_min / running_max
// when observer_on and writes scale / zero_point when fake_quant_on (flags read on the device). The
// fake quant that follows is launch_fake_quant with enabled = fake_quant_on.
#include "../cpu/qparams.h"
#include "common.cuh"
#include "launchers.h"

namespace fakequant {
namespace cuda {
namespace {

constexpr int kItems = 16;
constexpr int64_t kChunk = int64_t{kThreads} * kItems;

// Block b reduces chunk (b % nchunks) of channel (b / nchunks) to workspace[2b], workspace[2b + 1].
// kFlat: x is one unit-stride row (element number = offset).
template <DType T, bool kFlat>
__global__ void __launch_bounds__(kThreads) minmax_kernel(CudaFusedObsParams p, Layout l, int64_t nchunks) {
  using E = Elem<T>;
  using S = typename E::S;
  if (*p.observer_on == 0) return;
  const int64_t per_channel = l.numel / p.channels;
  const int64_t c = blockIdx.x / nchunks, chunk = blockIdx.x % nchunks;
  const int64_t begin = c * per_channel + chunk * kChunk;
  const int64_t end = min(begin + kChunk, (c + 1) * per_channel);
  const S* x = static_cast<const S*>(p.x);
  float mn = INFINITY, mx = -INFINITY;
#pragma unroll
  for (int k = 0; k < kItems; ++k) {
    const int64_t lin = begin + k * kThreads + threadIdx.x;
    if (lin < end) {
      const float v = E::load(x[kFlat ? lin : locate(l, lin, -1).in]);
      mn = NanMin{}(mn, v);
      mx = NanMax{}(mx, v);
    }
  }
  mn = block_reduce(mn, NanMin{}, INFINITY);
  mx = block_reduce(mx, NanMax{}, -INFINITY);
  if (threadIdx.x == 0) {
    p.workspace[2 * blockIdx.x] = mn;
    p.workspace[2 * blockIdx.x + 1] = mx;
  }
}

// One warp per channel: combine the partials, update the running min / max, choose the qparams.
__global__ void __launch_bounds__(kThreads) observe_kernel(CudaFusedObsParams p, int64_t nchunks) {
  const int64_t c = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int lane = threadIdx.x & 31;
  if (c >= p.channels) return;  // whole warps leave together
  if (*p.observer_on != 0) {
    const float* w = p.workspace + 2 * c * nchunks;
    float mn = INFINITY, mx = -INFINITY;
    for (int64_t i = lane; i < nchunks; i += 32) {
      mn = NanMin{}(mn, w[2 * i]);
      mx = NanMax{}(mx, w[2 * i + 1]);
    }
    mn = warp_reduce(mn, NanMin{});
    mx = warp_reduce(mx, NanMax{});
    if (lane == 0) {
      p.running_min[c] = moving_average(p.running_min[c], mn, p.averaging_const);
      p.running_max[c] = moving_average(p.running_max[c], mx, p.averaging_const);
    }
  }
  if (lane == 0 && *p.fake_quant_on != 0) {
    const QParams q = choose_qparams(p.running_min[c], p.running_max[c], p.quant_min, p.quant_max, p.symmetric);
    p.scale[c] = q.scale;
    p.zero_point[c] = q.zero_point;
    p.zero_point_float[c] = static_cast<float>(q.zero_point);
  }
}

}  // namespace
}  // namespace cuda

namespace {

template <DType T>
void launch_minmax(const CudaFusedObsParams& p, const cuda::Layout& l, int64_t nchunks, unsigned blocks, bool flat,
                   cudaStream_t stream) {
  if (flat) {
    cuda::minmax_kernel<T, true><<<blocks, cuda::kThreads, 0, stream>>>(p, l, nchunks);
  } else {
    cuda::minmax_kernel<T, false><<<blocks, cuda::kThreads, 0, stream>>>(p, l, nchunks);
  }
}

}  // namespace

int64_t fused_workspace_floats(const Strided& it, int64_t channels) {
  return 2 * channels * cuda::chunks_per_channel(it, channels, cuda::kChunk);
}

cudaError_t launch_fused_observe(const CudaFusedObsParams& p, cudaStream_t stream) {
  if (p.channels < 1) return cudaErrorInvalidValue;
  const cuda::Layout l = cuda::make_layout(p.it);
  if (l.numel == 0 || l.numel % p.channels != 0) return cudaErrorInvalidValue;
  const int64_t nchunks = cuda::chunks_per_channel(p.it, p.channels, cuda::kChunk);
  const int64_t blocks = p.channels * nchunks;
  if (blocks > cuda::kMaxBlocks) return cudaErrorInvalidValue;
  const unsigned b = static_cast<unsigned>(blocks);
  const bool flat = p.it.ndim == 1 && p.it.in_stride[0] == 1;
  switch (p.dtype) {
    case DType::F32: launch_minmax<DType::F32>(p, l, nchunks, b, flat, stream); break;
    case DType::F16: launch_minmax<DType::F16>(p, l, nchunks, b, flat, stream); break;
    case DType::BF16: launch_minmax<DType::BF16>(p, l, nchunks, b, flat, stream); break;
    default: return cudaErrorInvalidValue;
  }
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return e;
  const unsigned warps_per_block = cuda::kThreads / 32;
  const unsigned ob = static_cast<unsigned>(cuda::ceil_div(p.channels, warps_per_block));
  cuda::observe_kernel<<<ob, cuda::kThreads, 0, stream>>>(p, nchunks);
  return cudaGetLastError();
}

}  // namespace fakequant
