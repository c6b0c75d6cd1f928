// fake_quant.cu — CUDA fake-quant forward (output + one-bit mask, packed with warp shuffles) and mask backward.
//
// Each thread takes kU runs of V = 16 / sizeof(element) consecutive elements of the iteration space,
// the warp's lanes side by side (run u of lane l starts at element warp_base + (32 u + l) V), and
// issues all its loads before computing. A run is one 16-byte load and store when it sits in one
// unit-stride row at aligned addresses, element by element otherwise. The element rule is
// fake_quant_value from csrc/cpu/fake_quant.h, so results equal the CPU kernels bit for bit.
#include "../cpu/fake_quant.h"
#include "common.cuh"
#include "launchers.h"

namespace fakequant {
namespace cuda {
namespace {

constexpr int kU = 4;  // runs per thread

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

// The V mask bits of every lane, gathered into the 32-bit words of the warp's 32 V elements:
// lanes 32 / V apart hold one word each after the shuffles, and write it.
template <int V>
__device__ __forceinline__ void store_mask_run(uint32_t* mask, int64_t first_word, int64_t nwords, uint32_t bits) {
  constexpr int kLanesPerWord = 32 / V;
  const int lane = threadIdx.x & 31;
  uint32_t word = bits << ((lane % kLanesPerWord) * V);
#pragma unroll
  for (int o = 1; o < kLanesPerWord; o <<= 1) word |= __shfl_xor_sync(kFullWarp, word, o);
  const int64_t w = first_word + lane / kLanesPerWord;
  if (lane % kLanesPerWord == 0 && w < nwords) mask[w] = word;
}

// How the kernel finds an element: kGeneral locates it in the strided layout; kFlat is one
// unit-stride row (offset = element number) with no channel dim; kFlatChannel is a contiguous tensor
// below 2^31 elements whose channel is (element / inner) % channels (the divisors in Channels).
constexpr int kGeneral = 0, kFlat = 1, kFlatChannel = 2;

struct Channels {
  DivMod32 inner, count;  // kFlatChannel needs numel < 2^31
  // The channel of element lin, and its index col inside that channel's run of `inner` elements.
  __device__ __forceinline__ uint32_t of(int64_t lin, uint32_t& col) const {
    const uint32_t q = inner.div(static_cast<uint32_t>(lin));
    col = static_cast<uint32_t>(lin) - q * inner.d;
    return q - count.div(q) * count.d;
  }
  __device__ __forceinline__ int64_t of(int64_t lin) const {
    uint32_t col;
    return of(lin, col);
  }
};

// Run u of this thread after its load: where its output goes, its first channel and whether all of
// its V elements share it; runs that do not take the 16-byte path (vec false) are walked element by
// element from their start instead.
struct Run {
  int64_t out;
  int32_t ch;
  bool vec, one_channel;
};

// Locates the run at element lin and, when it takes the 16-byte path, loads it into v.
template <int V, int kShape, class S>
__device__ __forceinline__ Run load_run(const Layout& l, const Channels& chans, int64_t lin, int ch_dim, const S* x,
                                        const S* y, Vec16<S>& v) {
  Run r{0, 0, false, true};
  if (lin >= l.numel) return r;
  if constexpr (kShape != kGeneral) {
    r.out = lin;
    r.vec = lin + V <= l.numel && aligned16(x + lin) && aligned16(y + lin);
    if (r.vec) v = *reinterpret_cast<const Vec16<S>*>(x + lin);
    if constexpr (kShape == kFlatChannel) {
      uint32_t col;
      r.ch = static_cast<int32_t>(chans.of(lin, col));
      r.one_channel = col + V <= chans.inner.d;
    }
    return r;
  }
  const int last = l.ndim - 1;
  const Pos pos = locate(l, lin, ch_dim);
  r.out = pos.out;
  r.ch = static_cast<int32_t>(pos.ch);
  r.one_channel = ch_dim != last;
  r.vec = l.in_stride[last] == 1 && l.out_stride[last] == 1 && pos.col + V <= l.size[last] &&
          aligned16(x + pos.in) && aligned16(y + pos.out);
  if (r.vec) v = *reinterpret_cast<const Vec16<S>*>(x + pos.in);
  return r;
}

// The element rule's two switches as compile-time constants (kRule: kRuleTensor, kRuleChannelInt or
// kRuleChannelFloat), so that each kernel's inner loop has no branches on them.
constexpr int kRuleTensor = 0, kRuleChannelInt = 1, kRuleChannelFloat = 2;

template <DType T, int kRule, int kShape>
__global__ void __launch_bounds__(kThreads, 3) fake_quant_kernel(CudaFakeQuantParams p, Layout l, Channels chans) {
  using E = Elem<T>;
  using S = typename E::S;
  constexpr int V = Vec16<S>::kN;
  p.fq.zp_mode = kRule == kRuleChannelFloat ? ZeroPointMode::AddThenRound : ZeroPointMode::RoundThenAdd;
  p.fq.int64_cast = kRule != kRuleTensor;
  const int lane = threadIdx.x & 31;
  const int64_t warp_base = ((static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5) * (32 * V * kU);
  const int ch_dim = p.fq.ch_dim;
  const bool on = p.enabled == nullptr || *p.enabled != 0;
  const S* x = static_cast<const S*>(p.fq.x);
  S* y = static_cast<S*>(p.fq.y);
  Run runs[kU];
  Vec16<S> xv[kU];
#pragma unroll
  for (int u = 0; u < kU; ++u)
    runs[u] = load_run<V, kShape>(l, chans, warp_base + (32 * u + lane) * V, ch_dim, x, y, xv[u]);
  // The channel of element j of a run that spans channels (the innermost dim is the channel dim,
  // or a contiguous tensor's channel ends inside the run).
  const auto channel_at = [&](const Run& r, int64_t lin, int j) -> int64_t {
    return kShape == kFlatChannel ? chans.of(lin + j) : r.ch + j;
  };
  int64_t qc = -1;
  QParams q{};
#pragma unroll
  for (int u = 0; u < kU; ++u) {
    const int64_t lin = warp_base + (32 * u + lane) * V;
    uint32_t bits = 0;
    if (runs[u].vec) {
      typename E::C yj[V];
      if (runs[u].one_channel) {  // the common case: one channel's qparams, no branch per element
        if (runs[u].ch != qc) q = qparams_of(p, qc = runs[u].ch);
#pragma unroll
        for (int j = 0; j < V; ++j) yj[j] = fake_quant_one(p, on, q, E::load(xv[u].v[j]), bits, j);
      } else {
#pragma unroll
        for (int j = 0; j < V; ++j) {
          const int64_t c = channel_at(runs[u], lin, j);
          if (c != qc) q = qparams_of(p, qc = c);
          yj[j] = fake_quant_one(p, on, q, E::load(xv[u].v[j]), bits, j);
        }
      }
      *reinterpret_cast<Vec16<S>*>(y + runs[u].out) = store_vec<E>(yj);
    } else if (lin < l.numel) {
      Pos pos = kShape != kGeneral ? Pos{lin, lin, 0, 0} : locate(l, lin, ch_dim);
      for (int j = 0; j < V && lin + j < l.numel; ++j) {
        if constexpr (kShape == kGeneral) {
          if (j > 0) step(l, lin + j, ch_dim, pos);
        } else {
          pos.in = pos.out = lin + j;
        }
        if constexpr (kShape == kFlatChannel) pos.ch = chans.of(lin + j);
        if (pos.ch != qc) q = qparams_of(p, qc = pos.ch);
        y[pos.out] = E::store(fake_quant_one(p, on, q, E::load(x[pos.in]), bits, j));
      }
    }
    if (p.fq.mask) {
      const int64_t first = warp_base + 32 * V * u;  // a multiple of 32: the run group fills whole words
      store_mask_run<V>(reinterpret_cast<uint32_t*>(p.fq.mask), first / 32, 2 * ((l.numel + 63) / 64), bits);
    }
  }
}

template <DType T, bool kFlatRow>
__global__ void __launch_bounds__(kThreads, 4) mask_grad_kernel(MaskGradParams p, Layout l) {
  using E = Elem<T>;
  using S = typename E::S;
  constexpr int V = Vec16<S>::kN;
  const int lane = threadIdx.x & 31;
  const int64_t warp_base = ((static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5) * (32 * V * kU);
  const S* dy = static_cast<const S*>(p.dy);
  S* dx = static_cast<S*>(p.dx);
  const uint32_t* mask = reinterpret_cast<const uint32_t*>(p.mask);
  Run runs[kU];
  Vec16<S> gv[kU];
#pragma unroll
  for (int u = 0; u < kU; ++u)
    runs[u] = load_run<V, kFlatRow ? kFlat : kGeneral>(l, Channels{}, warp_base + (32 * u + lane) * V, -1, dy, dx, gv[u]);
#pragma unroll
  for (int u = 0; u < kU; ++u) {
    const int64_t lin = warp_base + (32 * u + lane) * V;
    if (lin >= l.numel) continue;
    // lin is a multiple of V and V divides 32: the run's bits sit in one word.
    const uint32_t bits = mask[lin >> 5] >> (lin & 31);
    if (runs[u].vec) {
      typename E::C gj[V];
#pragma unroll
      for (int j = 0; j < V; ++j) gj[j] = masked_grad(E::load(gv[u].v[j]), (bits >> j) & 1u);
      *reinterpret_cast<Vec16<S>*>(dx + runs[u].out) = store_vec<E>(gj);
      continue;
    }
    Pos pos = kFlatRow ? Pos{lin, lin, 0, lin} : locate(l, lin, -1);
    for (int j = 0; j < V && lin + j < l.numel; ++j) {
      if (j > 0) step(l, lin + j, -1, pos);
      dx[pos.out] = E::store(masked_grad(E::load(dy[pos.in]), (bits >> j) & 1u));
    }
  }
}

// One thread per kU runs of v elements; false when the grid would be too large.
bool grid_for(int64_t numel, int v, unsigned& blocks) {
  const int64_t b = ceil_div(ceil_div(numel, int64_t{v} * kU), kThreads);
  if (b > kMaxBlocks) return false;
  blocks = static_cast<unsigned>(b);
  return true;
}

}  // namespace
}  // namespace cuda

using cuda::grid_for;
using cuda::kThreads;

namespace {

// Whether the space is one unit-stride row without a channel dim (kFlat kernels).
bool flat(const Strided& it, int ch_dim) {
  return it.ndim == 1 && it.in_stride[0] == 1 && it.out_stride[0] == 1 && ch_dim < 0;
}

// Whether input and output are both contiguous in `it`'s dim order; then `chans` divides element
// numbers into channels (kFlatChannel kernels).
bool flat_channels(const Strided& it, int ch_dim, cuda::Channels& chans) {
  if (ch_dim < 0) return false;
  int64_t stride = 1, inner = 1;
  for (int d = it.ndim - 1; d >= 0; --d) {
    if (it.size[d] != 1 && (it.in_stride[d] != stride || it.out_stride[d] != stride)) return false;
    stride *= it.size[d];
    if (d > ch_dim) inner *= it.size[d];
  }
  if (stride >= (int64_t{1} << 31)) return false;  // the 32-bit divisions
  chans.inner = cuda::DivMod32::of(static_cast<uint32_t>(inner > 0 ? inner : 1));
  chans.count = cuda::DivMod32::of(static_cast<uint32_t>(it.size[ch_dim] > 0 ? it.size[ch_dim] : 1));
  return true;
}

template <DType T, int kRule>
void launch_channel_rule(const CudaFakeQuantParams& p, const cuda::Layout& l, unsigned blocks, cudaStream_t stream) {
  using cuda::fake_quant_kernel;
  cuda::Channels chans;
  if (flat_channels(p.fq.it, p.fq.ch_dim, chans)) {
    fake_quant_kernel<T, kRule, cuda::kFlatChannel><<<blocks, kThreads, 0, stream>>>(p, l, chans);
  } else {
    fake_quant_kernel<T, kRule, cuda::kGeneral><<<blocks, kThreads, 0, stream>>>(p, l, chans);
  }
}

template <DType T>
void launch_fake_quant_as(const CudaFakeQuantParams& p, const cuda::Layout& l, unsigned blocks, cudaStream_t stream) {
  using cuda::fake_quant_kernel;
  if (p.fq.int64_cast) {
    if (p.fq.zp_mode == ZeroPointMode::AddThenRound) {
      launch_channel_rule<T, cuda::kRuleChannelFloat>(p, l, blocks, stream);
    } else {
      launch_channel_rule<T, cuda::kRuleChannelInt>(p, l, blocks, stream);
    }
  } else if (flat(p.fq.it, p.fq.ch_dim)) {
    fake_quant_kernel<T, cuda::kRuleTensor, cuda::kFlat><<<blocks, kThreads, 0, stream>>>(p, l, cuda::Channels{});
  } else {
    fake_quant_kernel<T, cuda::kRuleTensor, cuda::kGeneral><<<blocks, kThreads, 0, stream>>>(p, l, cuda::Channels{});
  }
}

template <DType T>
void launch_mask_grad_as(const MaskGradParams& p, const cuda::Layout& l, unsigned blocks, cudaStream_t stream) {
  if (flat(p.it, -1)) {
    cuda::mask_grad_kernel<T, true><<<blocks, kThreads, 0, stream>>>(p, l);
  } else {
    cuda::mask_grad_kernel<T, false><<<blocks, kThreads, 0, stream>>>(p, l);
  }
}

}  // namespace

cudaError_t launch_fake_quant(const CudaFakeQuantParams& p, cudaStream_t stream) {
  // The kernels know the rule at compile time: only its three combinations occur.
  if (p.fq.zp_mode == ZeroPointMode::AddThenRound && !p.fq.int64_cast) return cudaErrorInvalidValue;
  const cuda::Layout l = cuda::make_layout(p.fq.it);
  if (l.numel == 0) return cudaSuccess;
  const int v = p.fq.dtype == DType::F32 ? 4 : p.fq.dtype == DType::F64 ? 2 : 8;
  unsigned blocks;
  if (!grid_for(l.numel, v, blocks)) return cudaErrorInvalidValue;
  switch (p.fq.dtype) {
    case DType::F32: launch_fake_quant_as<DType::F32>(p, l, blocks, stream); break;
    case DType::F16: launch_fake_quant_as<DType::F16>(p, l, blocks, stream); break;
    case DType::BF16: launch_fake_quant_as<DType::BF16>(p, l, blocks, stream); break;
    case DType::F64: launch_fake_quant_as<DType::F64>(p, l, blocks, stream); break;
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
    case DType::F32: launch_mask_grad_as<DType::F32>(p, l, blocks, stream); break;
    case DType::F16: launch_mask_grad_as<DType::F16>(p, l, blocks, stream); break;
    case DType::BF16: launch_mask_grad_as<DType::BF16>(p, l, blocks, stream); break;
    case DType::F64: launch_mask_grad_as<DType::F64>(p, l, blocks, stream); break;
  }
  return cudaGetLastError();
}

}  // namespace fakequant
