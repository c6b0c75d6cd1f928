// common.cuh — device helpers of the CUDA kernels: element types, strided positions, mask ballots, reductions.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "../params.h"

namespace fakequant {
namespace cuda {

constexpr int kThreads = 256;
constexpr unsigned kFullWarp = 0xffffffffu;

// Storage type S, compute type C (float; double for float64) and the V elements of a 16-byte vector.
template <DType T> struct Elem;
template <> struct Elem<DType::F32> {
  using S = float;
  using C = float;
  __device__ static float load(S v) { return v; }
  __device__ static S store(float v) { return v; }
};
template <> struct Elem<DType::F64> {
  using S = double;
  using C = double;
  __device__ static double load(S v) { return v; }
  __device__ static S store(double v) { return v; }
};
// fp16 / bf16 as raw bits; loads are exact, stores round to nearest even.
template <> struct Elem<DType::F16> {
  using S = uint16_t;
  using C = float;
  __device__ static float load(S v) { return __half2float(__ushort_as_half(v)); }
  __device__ static S store(float v) { return __half_as_ushort(__float2half_rn(v)); }
  // Two stores in one conversion instruction (the same rounding): a in the low half.
  __device__ static uint32_t store2(float a, float b) {
    const __half2 h = __floats2half2_rn(a, b);
    return *reinterpret_cast<const uint32_t*>(&h);
  }
};
template <> struct Elem<DType::BF16> {
  using S = uint16_t;
  using C = float;
  __device__ static float load(S v) { return __bfloat162float(__ushort_as_bfloat16(v)); }
  __device__ static S store(float v) { return __bfloat16_as_ushort(__float2bfloat16_rn(v)); }
  __device__ static uint32_t store2(float a, float b) {
    const __nv_bfloat162 h = __floats2bfloat162_rn(a, b);
    return *reinterpret_cast<const uint32_t*>(&h);
  }
};

template <class S>
struct alignas(16) Vec16 {
  static constexpr int kN = 16 / sizeof(S);
  S v[kN];
};

// A 16-byte vector of E's storage type from V computed values (pairwise conversions for 16-bit types).
template <class E, int V, class C>
__device__ __forceinline__ Vec16<typename E::S> store_vec(const C (&y)[V]) {
  Vec16<typename E::S> out;
  if constexpr (sizeof(typename E::S) == 2) {
    uint32_t* words = reinterpret_cast<uint32_t*>(out.v);
#pragma unroll
    for (int j = 0; j < V; j += 2) words[j / 2] = E::store2(y[j], y[j + 1]);
  } else {
#pragma unroll
    for (int j = 0; j < V; ++j) out.v[j] = E::store(y[j]);
  }
  return out;
}

__device__ __forceinline__ bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

// n / d and n % d for a divisor fixed at launch: m = floor((2^64 - 1) / d) makes the high product
// at most one below the quotient for n < 2^63, and one correction step fixes it.
struct DivMod {
  uint64_t d = 1, m = ~uint64_t{0};
  static DivMod of(uint64_t d) { return {d, ~uint64_t{0} / d}; }
  __device__ __forceinline__ void divmod(uint64_t n, uint64_t& q, uint64_t& r) const {
    q = __umul64hi(n, m);
    r = n - q * d;
    if (r >= d) {
      ++q;
      r -= d;
    }
  }
};

// n / d for n, d < 2^31 with one high multiply (Granlund-Montgomery): shift = ceil(log2 d) and
// m = 2^32 (2^shift - d) / d + 1 give n / d = (umulhi(n, m) + n) >> shift without overflow.
struct DivMod32 {
  uint32_t d = 1, m = 1, shift = 0;
  static DivMod32 of(uint32_t d) {
    uint32_t shift = 0;
    while ((uint64_t{1} << shift) < d) ++shift;
    const uint32_t m = static_cast<uint32_t>(((uint64_t{1} << 32) * ((uint64_t{1} << shift) - d)) / d + 1);
    return {d, m, shift};
  }
  __device__ __forceinline__ uint32_t div(uint32_t n) const { return (__umulhi(n, m) + n) >> shift; }
};

// A Strided iteration space with divisors for turning element numbers into offsets.
struct Layout {
  int ndim = 1;
  int64_t size[kMaxDims] = {};
  int64_t in_stride[kMaxDims] = {};
  int64_t out_stride[kMaxDims] = {};
  DivMod div[kMaxDims];
  int64_t numel = 0;
};

inline Layout make_layout(const Strided& s) {
  Layout l;
  l.ndim = s.ndim;
  l.numel = 1;
  for (int d = 0; d < s.ndim; ++d) {
    l.size[d] = s.size[d];
    l.in_stride[d] = s.in_stride[d];
    l.out_stride[d] = s.out_stride[d];
    l.div[d] = DivMod::of(static_cast<uint64_t>(s.size[d] > 0 ? s.size[d] : 1));
    l.numel *= s.size[d];
  }
  return l;
}

// Where element `lin` lives: input and output offsets, its index along dim ch_dim (0 if none) and
// along the innermost dim.
struct Pos {
  int64_t in = 0, out = 0, ch = 0, col = 0;
};

__device__ __forceinline__ Pos locate(const Layout& l, int64_t lin, int ch_dim) {
  Pos p;
  uint64_t rest = static_cast<uint64_t>(lin);
#pragma unroll
  for (int d = kMaxDims - 1; d >= 0; --d) {
    if (d >= l.ndim) continue;
    uint64_t q = 0, r = rest;
    if (d > 0) l.div[d].divmod(rest, q, r);
    const int64_t i = static_cast<int64_t>(r);
    p.in += i * l.in_stride[d];
    p.out += i * l.out_stride[d];
    if (d == ch_dim) p.ch = i;
    if (d == l.ndim - 1) p.col = i;
    rest = q;
  }
  return p;
}

// Moves p one element along the innermost dim (relocating at the end of a row).
__device__ __forceinline__ void step(const Layout& l, int64_t next_lin, int ch_dim, Pos& p) {
  const int last = l.ndim - 1;
  if (++p.col == l.size[last]) {
    p = locate(l, next_lin, ch_dim);
    return;
  }
  p.in += l.in_stride[last];
  p.out += l.out_stride[last];
  if (ch_dim == last) ++p.ch;
}

// Bits with (index mod (s * v)) < s: the masks of the shift-and-mask bit spreading below.
FQ_HD constexpr uint64_t spread_mask(int s, int v) {
  uint64_t m = 0;
  for (int i = 0; i < 64; ++i)
    if (i % (s * v) < s) m |= uint64_t{1} << i;
  return m;
}

// Moves bit k of x to bit V * k, for k < 64 / V.
template <int V, int S = 32 / V>
__device__ __forceinline__ uint64_t spread_bits(uint64_t x) {
  if constexpr (S == 0) {
    return x;
  } else {
    constexpr uint64_t kMask = spread_mask(S, V);
    return spread_bits<V, S / 2>((x | (x << (S * (V - 1)))) & kMask);
  }
}

// Each lane of a warp holds the mask bits of V consecutive elements (bit j = element j), lanes in
// element order from a multiple of 32 * V; the warp's V / 2 mask words are written by lanes
// 0 .. V/2 - 1. Every lane of the warp must call this.
template <int V>
__device__ __forceinline__ void store_mask_words(uint64_t* mask, int64_t first_word, int64_t nwords,
                                                 uint32_t bits) {
  static_assert(V >= 2 && V <= 64 && (V & (V - 1)) == 0, "V must be a power of two in [2, 64]");
  constexpr int kLanesPerWord = 64 / V;
  constexpr uint64_t kLaneBits = kLanesPerWord == 32 ? 0xffffffffull : (uint64_t{1} << kLanesPerWord) - 1;
  const int lane = threadIdx.x & 31;
  const bool writer = lane < V / 2;
  const int shift = writer ? lane * kLanesPerWord : 0;
  uint64_t word = 0;
#pragma unroll
  for (int j = 0; j < V; ++j) {
    const uint64_t b = __ballot_sync(kFullWarp, (bits >> j) & 1u);
    word |= spread_bits<V>((b >> shift) & kLaneBits) << j;
  }
  if (writer && first_word + lane < nwords) mask[first_word + lane] = word;
}

// Fixed-order reductions: a xor butterfly inside each warp, then warp 0 over the warps' results.
// The result is valid in thread 0; the order depends only on blockDim, so sums are deterministic.
template <class T, class Op>
__device__ __forceinline__ T warp_reduce(T v, Op op) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(kFullWarp, v, o));
  return v;
}

template <class T, class Op>
__device__ T block_reduce(T v, Op op, T identity) {
  __shared__ T partial[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_reduce(v, op);
  __syncthreads();  // partial may still be read by a previous call
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < static_cast<int>(blockDim.x >> 5) ? partial[lane] : identity;
    v = warp_reduce(v, op);
  }
  return v;
}

struct Sum {
  __device__ float operator()(float a, float b) const { return a + b; }
};
// min / max that propagate NaN (as torch.aminmax does).
struct NanMin {
  __device__ float operator()(float a, float b) const { return (a < b || a != a) ? a : b; }
};
struct NanMax {
  __device__ float operator()(float a, float b) const { return (a > b || a != a) ? a : b; }
};

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Blocks per channel when each block takes `chunk` elements of one channel (at least one, so that
// empty inputs still produce their zero or identity results).
inline int64_t chunks_per_channel(const Strided& it, int64_t channels, int64_t chunk) {
  int64_t numel = 1;
  for (int d = 0; d < it.ndim; ++d) numel *= it.size[d];
  const int64_t per_channel = channels > 0 ? numel / channels : 0;
  return per_channel > 0 ? ceil_div(per_channel, chunk) : 1;
}

// Largest 1-D grid we launch.
constexpr int64_t kMaxBlocks = (int64_t{1} << 31) - 1;

}  // namespace cuda
}  // namespace fakequant
