// qops.cu — CUDA kernels of the int8 modules: quantize, dequantize, elementwise add / mul / requantize, depthwise conv.
//
// One thread per element (per output element for the depthwise conv, channels innermost so that
// neighbouring threads read neighbouring bytes). The element rules are the CPU kernels' own
// (quantize.h, qelementwise.h, requant.h), so results equal them bit for bit.
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

__global__ void __launch_bounds__(kThreads) dwconv_kernel(CudaDwConvParams p, int64_t outputs) {
  const int64_t i = thread_index();
  if (i >= outputs) return;
  const ConvGeometry& g = p.g;
  const int64_t c = i % g.c;
  const OutPixel o = out_pixel(g, i / g.c);
  const int8_t* w = p.w + c * g.kh * g.kw;
  const int32_t wz = p.w_zero_point[c];
  int32_t acc = 0;
  for (int64_t ti = 0; ti < g.kh; ++ti) {
    for (int64_t tj = 0; tj < g.kw; ++tj) {
      const int64_t off = tap_offset(g, o, ti, tj);
      if (off >= 0) acc += (static_cast<int32_t>(g.x[off + c]) - g.x_zp) * (static_cast<int32_t>(w[ti * g.kw + tj]) - wz);
    }
  }
  p.y[i] = requantize_channel(acc, p.x_scale, p.w_scale[c], p.bias ? p.bias[c] : 0.f, p.out_scale, p.out_zero_point,
                              p.out_lo, p.out_hi);
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
  const int64_t outputs = p.g.batch * p.g.oh * p.g.ow * p.g.c;
  unsigned b;
  if (outputs == 0) return cudaSuccess;
  if (!cuda::blocks_for(outputs, b)) return cudaErrorInvalidValue;
  cuda::dwconv_kernel<<<b, kThreads, 0, stream>>>(p, outputs);
  return cudaGetLastError();
}

}  // namespace fakequant
