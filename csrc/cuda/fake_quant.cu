// fake_quant.cu — CUDA fake-quant forward (output + one-bit mask from warp ballots) and mask backward.
//
// Each thread takes V = 16 / sizeof(element) consecutive elements of the iteration space: one 16-byte
// load and store when they sit in one unit-stride row at aligned addresses, element by element
// otherwise. The element rule is fake_quant_value from csrc/cpu/fake_quant.h, so results equal the
// CPU kernels bit for bit.
#include "../cpu/fake_quant.h"
#include "common.cuh"
#include "launchers.h"

namespace fakequant {
namespace cuda {
namespace {

struct QParams {
  float s, inv, zp;
};

__device__ __forceinline__ QParams qparams_of(const CudaFakeQuantParams& p, int64_t c) {
  const float s = p.fq.scale ? p.fq.scale[c] : p.scale_value;
  const float zp = p.fq.zero_point ? p.fq.zero_point[c] : p.zero_point_value;
  return {s, inv_scale_of(s), zp};
}

template <class C>
__device__ __forceinline__ C fake_quant_one(const CudaFakeQuantParams& p, bool on, const QParams& q, C x,
                                            uint32_t& bits, int j) {
  bool m = true;
  const C y = on ? fake_quant_value(p.fq, x, q.s, q.inv, q.zp, m) : x;
  bits |= static_cast<uint32_t>(m) << j;
  return y;
}

template <DType T>
__global__ void __launch_bounds__(kThreads) fake_quant_kernel(CudaFakeQuantParams p, Layout l) {
  using E = Elem<T>;
  using S = typename E::S;
  constexpr int V = Vec16<S>::kN;
  const int64_t chunk = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t lin0 = chunk * V;
  const int ch_dim = p.fq.ch_dim, last = l.ndim - 1;
  const bool vary = ch_dim == last;  // channel changes with every element
  uint32_t bits = 0;
  if (lin0 < l.numel) {
    const bool on = p.enabled == nullptr || *p.enabled != 0;
    const S* x = static_cast<const S*>(p.fq.x);
    S* y = static_cast<S*>(p.fq.y);
    Pos pos = locate(l, lin0, ch_dim);
    QParams q = qparams_of(p, pos.ch);
    const bool vec = l.in_stride[last] == 1 && l.out_stride[last] == 1 && pos.col + V <= l.size[last] &&
                     aligned16(x + pos.in) && aligned16(y + pos.out);
    if (vec) {
      const Vec16<S> xv = *reinterpret_cast<const Vec16<S>*>(x + pos.in);
      Vec16<S> yv;
#pragma unroll
      for (int j = 0; j < V; ++j) {
        if (vary && j > 0) q = qparams_of(p, pos.ch + j);
        yv.v[j] = E::store(fake_quant_one(p, on, q, E::load(xv.v[j]), bits, j));
      }
      *reinterpret_cast<Vec16<S>*>(y + pos.out) = yv;
    } else {
      for (int j = 0; j < V && lin0 + j < l.numel; ++j) {
        if (j > 0) {
          step(l, lin0 + j, ch_dim, pos);
          if (vary || pos.col == 0) q = qparams_of(p, pos.ch);
        }
        y[pos.out] = E::store(fake_quant_one(p, on, q, E::load(x[pos.in]), bits, j));
      }
    }
  }
  if (p.fq.mask) store_mask_words<V>(p.fq.mask, (chunk - (threadIdx.x & 31)) / 32 * (V / 2), (l.numel + 63) / 64, bits);
}

template <DType T>
__global__ void __launch_bounds__(kThreads) mask_grad_kernel(MaskGradParams p, Layout l) {
  using E = Elem<T>;
  using S = typename E::S;
  constexpr int V = Vec16<S>::kN;
  const int64_t lin0 = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) * V;
  if (lin0 >= l.numel) return;
  const int last = l.ndim - 1;
  const S* dy = static_cast<const S*>(p.dy);
  S* dx = static_cast<S*>(p.dx);
  // lin0 is a multiple of V and V divides 64: the V bits sit in one word.
  const uint32_t bits = static_cast<uint32_t>(p.mask[lin0 >> 6] >> (lin0 & 63));
  Pos pos = locate(l, lin0, -1);
  const bool vec = l.in_stride[last] == 1 && l.out_stride[last] == 1 && pos.col + V <= l.size[last] &&
                   aligned16(dy + pos.in) && aligned16(dx + pos.out);
  if (vec) {
    const Vec16<S> gv = *reinterpret_cast<const Vec16<S>*>(dy + pos.in);
    Vec16<S> ov;
#pragma unroll
    for (int j = 0; j < V; ++j) ov.v[j] = E::store(masked_grad(E::load(gv.v[j]), (bits >> j) & 1u));
    *reinterpret_cast<Vec16<S>*>(dx + pos.out) = ov;
    return;
  }
  for (int j = 0; j < V && lin0 + j < l.numel; ++j) {
    if (j > 0) step(l, lin0 + j, -1, pos);
    dx[pos.out] = E::store(masked_grad(E::load(dy[pos.in]), (bits >> j) & 1u));
  }
}

// One thread per V elements; false when the grid would be too large.
bool grid_for(int64_t numel, int v, unsigned& blocks) {
  const int64_t b = ceil_div(ceil_div(numel, v), kThreads);
  if (b > kMaxBlocks) return false;
  blocks = static_cast<unsigned>(b);
  return true;
}

}  // namespace
}  // namespace cuda

using cuda::grid_for;
using cuda::kThreads;

cudaError_t launch_fake_quant(const CudaFakeQuantParams& p, cudaStream_t stream) {
  const cuda::Layout l = cuda::make_layout(p.fq.it);
  if (l.numel == 0) return cudaSuccess;
  const int v = p.fq.dtype == DType::F32 ? 4 : p.fq.dtype == DType::F64 ? 2 : 8;
  unsigned blocks;
  if (!grid_for(l.numel, v, blocks)) return cudaErrorInvalidValue;
  switch (p.fq.dtype) {
    case DType::F32: cuda::fake_quant_kernel<DType::F32><<<blocks, kThreads, 0, stream>>>(p, l); break;
    case DType::F16: cuda::fake_quant_kernel<DType::F16><<<blocks, kThreads, 0, stream>>>(p, l); break;
    case DType::BF16: cuda::fake_quant_kernel<DType::BF16><<<blocks, kThreads, 0, stream>>>(p, l); break;
    case DType::F64: cuda::fake_quant_kernel<DType::F64><<<blocks, kThreads, 0, stream>>>(p, l); break;
  }
  return cudaGetLastError();
}

cudaError_t launch_mask_grad(const MaskGradParams& p, cudaStream_t stream) {
  const cuda::Layout l = cuda::make_layout(p.it);
  if (l.numel == 0) return cudaSuccess;
  const int v = p.dtype == DType::F32 ? 4 : p.dtype == DType::F64 ? 2 : 8;
  unsigned blocks;
  if (!grid_for(l.numel, v, blocks)) return cudaErrorInvalidValue;
  switch (p.dtype) {
    case DType::F32: cuda::mask_grad_kernel<DType::F32><<<blocks, kThreads, 0, stream>>>(p, l); break;
    case DType::F16: cuda::mask_grad_kernel<DType::F16><<<blocks, kThreads, 0, stream>>>(p, l); break;
    case DType::BF16: cuda::mask_grad_kernel<DType::BF16><<<blocks, kThreads, 0, stream>>>(p, l); break;
    case DType::F64: cuda::mask_grad_kernel<DType::F64><<<blocks, kThreads, 0, stream>>>(p, l); break;
  }
  return cudaGetLastError();
}

}  // namespace fakequant
