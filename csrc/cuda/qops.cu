// qops.cu — CUDA kernels of the int8 modules: quantize, dequantize, elementwise add / mul / requantize, depthwise conv.
//
// One thread per element (per 4 or 1 channels of an output pixel for the depthwise conv, channels
// innermost so that neighbouring threads read neighbouring bytes). The element rules are the CPU
// kernels' own (quantize.h, qelementwise.h, requant.h), so results equal them bit for bit.
#include "../cpu/qelementwise.h"
#include "../cpu/quantize.h"
#include "common.cuh"
#include "launchers.h"
#include "requant.h"

namespace fakequant {
namespace cuda {
namespace {

__device__ __forceinline__ int64_t thread_index() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}

template <DType T>
__global__ void __launch_bounds__(kThreads) quantize_kernel(CudaQConvertParams p) {
  using E = Elem<T>;
  const int64_t i = thread_index();
  if (i >= p.n) return;
  const typename E::C x = E::load(static_cast<const typename E::S*>(p.x)[i]);
  const auto qf = clamp_q(quantize_unclamped(x, inv_scale_of(p.scale), p.zero_point, ZeroPointMode::RoundThenAdd),
                          p.quant_min, p.quant_max);
  if (p.q_signed) {
    static_cast<int8_t*>(p.y)[i] = static_cast<int8_t>(qf);
  } else {
    static_cast<uint8_t*>(p.y)[i] = static_cast<uint8_t>(qf);
  }
}

__global__ void __launch_bounds__(kThreads) dequantize_kernel(CudaQConvertParams p) {
  const int64_t i = thread_index();
  if (i >= p.n) return;
  const float q = p.q_signed ? static_cast<const int8_t*>(p.x)[i] : static_cast<const uint8_t*>(p.x)[i];
  static_cast<float*>(p.y)[i] = dequantize(q, p.zero_point, p.scale);
}

__global__ void __launch_bounds__(kThreads) qelementwise_kernel(QElementwiseParams p, int64_t n) {
  const int64_t i = thread_index();
  if (i < n) p.y[i] = qelementwise_element(p, i);
}

// One thread per kC consecutive channels of one output pixel: kC = 4 reads and writes 4 bytes at once
// (channels a multiple of 4, aligned rows), kC = 1 otherwise.
template <int kC>
__global__ void __launch_bounds__(kThreads) dwconv_kernel(CudaDwConvParams p, int64_t threads) {
  const int64_t i = thread_index();
  if (i >= threads) return;
  const ConvGeometry& g = p.g;
  const int64_t groups = g.c / kC, c0 = i % groups * kC, q = i / groups;
  const OutPixel o = out_pixel(g, q);
  const int64_t taps = g.kh * g.kw;
  int32_t wz[kC], acc[kC] = {};
#pragma unroll
  for (int j = 0; j < kC; ++j) wz[j] = p.w_zero_point[c0 + j];
  for (int64_t ti = 0; ti < g.kh; ++ti) {
    for (int64_t tj = 0; tj < g.kw; ++tj) {
      const int64_t off = tap_offset(g, o, ti, tj);
      if (off < 0) continue;  // padding: x - x_zp = 0
      uint32_t xs;
      if constexpr (kC == 4) {
        xs = *reinterpret_cast<const uint32_t*>(g.x + off + c0);
      } else {
        xs = g.x[off + c0];
      }
      const int64_t t = ti * g.kw + tj;
#pragma unroll
      for (int j = 0; j < kC; ++j) {
        const int32_t xv = static_cast<int32_t>((xs >> (8 * j)) & 0xffu) - g.x_zp;
        acc[j] += xv * (static_cast<int32_t>(p.w[(c0 + j) * taps + t]) - wz[j]);
      }
    }
  }
  uint32_t ys = 0;
#pragma unroll
  for (int j = 0; j < kC; ++j) {
    const int64_t c = c0 + j;
    const uint8_t v = requantize_channel(acc[j], p.x_scale, p.w_scale[c], p.bias ? p.bias[c] : 0.f, p.out_scale,
                                         p.out_zero_point, p.out_lo, p.out_hi);
    ys |= static_cast<uint32_t>(v) << (8 * j);
  }
  if constexpr (kC == 4) {
    *reinterpret_cast<uint32_t*>(p.y + q * g.c + c0) = ys;
  } else {
    p.y[q * g.c + c0] = static_cast<uint8_t>(ys);
  }
}

// Blocks for one thread per element; false when the grid would be too large.
bool blocks_for(int64_t n, unsigned& blocks) {
  const int64_t b = ceil_div(n, kThreads);
  if (b > kMaxBlocks) return false;
  blocks = static_cast<unsigned>(b);
  return true;
}

}  // namespace
}  // namespace cuda

using cuda::kThreads;

cudaError_t launch_quantize(const CudaQConvertParams& p, cudaStream_t stream) {
  unsigned b;
  if (p.n == 0) return cudaSuccess;
  if (!cuda::blocks_for(p.n, b)) return cudaErrorInvalidValue;
  switch (p.dtype) {
    case DType::F32: cuda::quantize_kernel<DType::F32><<<b, kThreads, 0, stream>>>(p); break;
    case DType::F16: cuda::quantize_kernel<DType::F16><<<b, kThreads, 0, stream>>>(p); break;
    case DType::BF16: cuda::quantize_kernel<DType::BF16><<<b, kThreads, 0, stream>>>(p); break;
    case DType::F64: cuda::quantize_kernel<DType::F64><<<b, kThreads, 0, stream>>>(p); break;
  }
  return cudaGetLastError();
}

cudaError_t launch_dequantize(const CudaQConvertParams& p, cudaStream_t stream) {
  unsigned b;
  if (p.n == 0) return cudaSuccess;
  if (!cuda::blocks_for(p.n, b)) return cudaErrorInvalidValue;
  cuda::dequantize_kernel<<<b, kThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

cudaError_t launch_qelementwise(const QElementwiseParams& p, int64_t n, cudaStream_t stream) {
  unsigned b;
  if (n == 0) return cudaSuccess;
  if (!cuda::blocks_for(n, b)) return cudaErrorInvalidValue;
  cuda::qelementwise_kernel<<<b, kThreads, 0, stream>>>(p, n);
  return cudaGetLastError();
}

cudaError_t launch_dwconv(const CudaDwConvParams& p, cudaStream_t stream) {
  const auto aligned4 = [](const void* q) { return (reinterpret_cast<uintptr_t>(q) & 3) == 0; };
  const bool by4 = p.g.c % 4 == 0 && aligned4(p.g.x) && aligned4(p.y);
  const int64_t threads = p.g.batch * p.g.oh * p.g.ow * (by4 ? p.g.c / 4 : p.g.c);
  unsigned b;
  if (threads == 0) return cudaSuccess;
  if (!cuda::blocks_for(threads, b)) return cudaErrorInvalidValue;
  if (by4) {
    cuda::dwconv_kernel<4><<<b, kThreads, 0, stream>>>(p, threads);
  } else {
    cuda::dwconv_kernel<1><<<b, kThreads, 0, stream>>>(p, threads);
  }
  return cudaGetLastError();
}

}  // namespace fakequant
