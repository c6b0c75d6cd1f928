// int8_gemm.cu — CUDA int8 GEMM: the kernel choice, tensor cores (mma.sync m16n8k32, cp.async multistage), dp4a fallback.
//
// out[M, N] = a[M, K] . w[N, K]^T. On an sm_90a build and a 9.0 device, large problems go to the
// wgmma kernel (int8_gemm_sm90.cu). The mma kernel (sm_80+) stages BM x 64 and BN x 64 byte
// tiles of a and w in shared memory through a STAGES-deep cp.async pipeline (16-byte copies, zero
// fill past M, N and K), reads fragments with ldmatrix from an XOR-swizzled layout (conflict free)
// and accumulates in int32 with mma.sync m16n8k32 (u8 x s8 for uint8 activations, s8 x s8 for
// int8). The dp4a kernel takes any strides and K, and older GPUs. All end in the same epilogue
// (gemm_epilogue.cuh): zero-point correction from row sums, then int32, uint8 or float output.
#include "common.cuh"
#include "gemm_epilogue.cuh"
#include "int8_gemm_sm90.h"
#include "launchers.h"

namespace fakequant {
namespace cuda {
namespace {

struct IntSum {
  __device__ int32_t operator()(int32_t a, int32_t b) const { return a + b; }
};

// One warp per row: sums of a's rows, then of w's rows, into workspace[0 .. M + N).
__global__ void __launch_bounds__(kThreads) row_sums_kernel(CudaInt8GemmParams p) {
  const int64_t r = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int lane = threadIdx.x & 31;
  if (r >= p.M + p.N) return;  // whole warps leave together
  const bool is_a = r < p.M;
  const uint8_t* row = is_a ? static_cast<const uint8_t*>(p.a) + r * p.lda
                            : reinterpret_cast<const uint8_t*>(p.w) + (r - p.M) * p.ldw;
  const bool sign = !is_a || !p.a_unsigned;
  int32_t s = 0;
  for (int64_t k = lane; k < p.K; k += 32) s += sign ? static_cast<int32_t>(static_cast<int8_t>(row[k])) : row[k];
  s = warp_reduce(s, IntSum{});
  if (lane == 0) p.workspace[r] = s;
}

// ---- tensor-core kernel ----

constexpr int kBK = 64;  // bytes of K per stage: four 16-byte chunks per row

// The tensor-core helpers exist for sm_80+ device code (and the host pass) only.
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
// Byte offset of 16-byte chunk kc of `row` in a [rows][64] tile: chunk index XOR (row / 2) % 4
// spreads the 8 rows one ldmatrix reads over all 32 banks.
__device__ __forceinline__ int swizzle(int row, int kc) { return row * kBK + ((kc ^ ((row >> 1) & 3)) << 4); }

__device__ __forceinline__ unsigned smem_addr(const void* p) {
  return static_cast<unsigned>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src),
               "r"(valid ? 16 : 0));
}

__device__ __forceinline__ void cp_async_commit() {
  asm volatile("cp.async.commit_group;\n" ::);
}

template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}

template <bool kUnsignedA>
__device__ __forceinline__ void mma_16x8x32(int32_t (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  if constexpr (kUnsignedA) {
    asm volatile(
        "mma.sync.aligned.m16n8k32.row.col.s32.u8.s8.s32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
}

// Copies the [rows][64] byte tile at (row0, k0) of a K-contiguous matrix into shared memory.
template <int kRows, int kThreadsCta>
__device__ __forceinline__ void load_tile(uint8_t* dst, const uint8_t* src, int64_t ld, int64_t row0, int64_t rows,
                                          int64_t k0, int64_t k) {
  static_assert(kRows * 4 % kThreadsCta == 0, "tile chunks must divide among the threads");
#pragma unroll
  for (int i = 0; i < kRows * 4 / kThreadsCta; ++i) {
    const int q = threadIdx.x + i * kThreadsCta, row = q >> 2, kc = q & 3;
    const int64_t gr = row0 + row, gk = k0 + kc * 16;
    const bool valid = gr < rows && gk < k;
    cp_async16(dst + swizzle(row, kc), valid ? src + gr * ld + gk : src, valid);
  }
}
#endif  // sm_80+

// CTA tile BM x BN, WM x WN warps each owning a (BM / WM) x (BN / WN) block of 16 x 8 mma tiles.
template <int kBM, int kBN, int kWM, int kWN, int kStages>
struct MmaConfig {
  static constexpr int BM = kBM, BN = kBN, WM = kWM, WN = kWN, STAGES = kStages;
  static constexpr int kThreads = WM * WN * 32;
  static constexpr int kMi = BM / WM / 16, kNi = BN / WN / 8;
  static constexpr int kSmemBytes = STAGES * (BM + BN) * kBK;
  static_assert(kMi >= 1 && kNi >= 2 && kNi % 2 == 0, "warp tile must be >= 16 x 16");
};

template <class Cfg, bool kUnsignedA>
__global__ void __launch_bounds__(Cfg::kThreads) mma_gemm_kernel(CudaInt8GemmParams p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
  __trap();  // launch_int8_gemm never picks this kernel below sm_80
#else
  constexpr int BM = Cfg::BM, BN = Cfg::BN, WM = Cfg::WM, WN = Cfg::WN, STAGES = Cfg::STAGES;
  constexpr int kMi = Cfg::kMi, kNi = Cfg::kNi;
  extern __shared__ __align__(128) uint8_t smem[];
  uint8_t* sa = smem;
  uint8_t* sb = smem + STAGES * BM * kBK;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int wm = warp / WN, wn = warp % WN;
  const int64_t m0 = static_cast<int64_t>(blockIdx.x) * BM, n0 = static_cast<int64_t>(blockIdx.y) * BN;
  const uint8_t* a = static_cast<const uint8_t*>(p.a);
  const uint8_t* w = reinterpret_cast<const uint8_t*>(p.w);
  const int ktiles = static_cast<int>((p.K + kBK - 1) / kBK);

  auto load_stage = [&](int stage, int kt) {
    const int64_t k0 = static_cast<int64_t>(kt) * kBK;
    load_tile<BM, Cfg::kThreads>(sa + stage * BM * kBK, a, p.lda, m0, p.M, k0, p.K);
    load_tile<BN, Cfg::kThreads>(sb + stage * BN * kBK, w, p.ldw, n0, p.N, k0, p.K);
  };

  int32_t acc[kMi][kNi][4] = {};
#pragma unroll
  for (int s = 0; s < STAGES - 1; ++s) {
    if (s < ktiles) load_stage(s, s);
    cp_async_commit();
  }
  for (int kt = 0; kt < ktiles; ++kt) {
    cp_async_wait<STAGES - 2>();
    __syncthreads();  // stage kt has landed, and every warp is done with the stage refilled below
    const int next = kt + STAGES - 1;
    if (next < ktiles) load_stage(next % STAGES, next);
    cp_async_commit();
    const uint8_t* ta = sa + (kt % STAGES) * BM * kBK;
    const uint8_t* tb = sb + (kt % STAGES) * BN * kBK;
#pragma unroll
    for (int kk = 0; kk < kBK / 32; ++kk) {
      uint32_t af[kMi][4], bf[kNi][2];
#pragma unroll
      for (int i = 0; i < kMi; ++i) {  // matrices: rows 0-7 / 8-15 x k 0-15 / 16-31
        const int row = wm * (BM / WM) + i * 16 + (lane & 15);
        ldmatrix_x4(af[i], ta + swizzle(row, kk * 2 + (lane >> 4)));
      }
#pragma unroll
      for (int j = 0; j < kNi; j += 2) {  // matrices: n 0-7 x k 0-15 / 16-31, then n 8-15
        const int row = wn * (BN / WN) + j * 8 + (lane & 7) + ((lane >> 4) << 3);
        uint32_t r[4];
        ldmatrix_x4(r, tb + swizzle(row, kk * 2 + ((lane >> 3) & 1)));
        bf[j][0] = r[0];
        bf[j][1] = r[1];
        bf[j + 1][0] = r[2];
        bf[j + 1][1] = r[3];
      }
#pragma unroll
      for (int i = 0; i < kMi; ++i)
#pragma unroll
        for (int j = 0; j < kNi; ++j) mma_16x8x32<kUnsignedA>(acc[i][j], af[i], bf[j][0], bf[j][1]);
    }
  }
  cp_async_wait<0>();
  // Accumulator layout: c0, c1 at (lane / 4, 2 * (lane % 4) + {0, 1}); c2, c3 eight rows below.
#pragma unroll
  for (int i = 0; i < kMi; ++i) {
#pragma unroll
    for (int j = 0; j < kNi; ++j) {
      const int64_t r = m0 + wm * (BM / WM) + i * 16 + (lane >> 2);
      const int64_t c = n0 + wn * (BN / WN) + j * 8 + (lane & 3) * 2;
      store_out(p, r, c, acc[i][j][0]);
      store_out(p, r, c + 1, acc[i][j][1]);
      store_out(p, r + 8, c, acc[i][j][2]);
      store_out(p, r + 8, c + 1, acc[i][j][3]);
    }
  }
#endif
}

// ---- dp4a kernel: 64 x 64 tiles, 256 threads with 4 x 4 outputs each, any strides and K ----

constexpr int kDpTile = 64, kDpK = 32;

template <bool kUnsignedA>
__device__ __forceinline__ int32_t dot4(uint32_t a, uint32_t b, int32_t c) {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 610
  int32_t d;
  if constexpr (kUnsignedA) {
    asm("dp4a.u32.s32 %0, %1, %2, %3;\n" : "=r"(d) : "r"(a), "r"(b), "r"(c));
  } else {
    asm("dp4a.s32.s32 %0, %1, %2, %3;\n" : "=r"(d) : "r"(a), "r"(b), "r"(c));
  }
  return d;
#else
  for (int i = 0; i < 4; ++i) {
    const int32_t x = kUnsignedA ? static_cast<int32_t>((a >> (8 * i)) & 0xff)
                                 : static_cast<int32_t>(static_cast<int8_t>(a >> (8 * i)));
    c += x * static_cast<int32_t>(static_cast<int8_t>(b >> (8 * i)));
  }
  return c;
#endif
}

// Four bytes of row r at k .. k + 3 (zero past the matrix) as one little-endian word.
__device__ __forceinline__ uint32_t load_word(const uint8_t* m, int64_t ld, int64_t r, int64_t rows, int64_t k,
                                              int64_t kmax) {
  uint32_t v = 0;
  if (r < rows) {
    const uint8_t* row = m + r * ld;
#pragma unroll
    for (int i = 0; i < 4; ++i)
      if (k + i < kmax) v |= static_cast<uint32_t>(row[k + i]) << (8 * i);
  }
  return v;
}

template <bool kUnsignedA>
__global__ void __launch_bounds__(kThreads) dp4a_gemm_kernel(CudaInt8GemmParams p) {
  __shared__ uint32_t sa[kDpK / 4][kDpTile], sb[kDpK / 4][kDpTile];
  const int tx = threadIdx.x & 15, ty = threadIdx.x >> 4;
  const int64_t m0 = static_cast<int64_t>(blockIdx.x) * kDpTile, n0 = static_cast<int64_t>(blockIdx.y) * kDpTile;
  const uint8_t* a = static_cast<const uint8_t*>(p.a);
  const uint8_t* w = reinterpret_cast<const uint8_t*>(p.w);
  int32_t acc[4][4] = {};
  for (int64_t k0 = 0; k0 < p.K; k0 += kDpK) {
#pragma unroll
    for (int i = 0; i < 2; ++i) {  // 64 rows x 8 words per operand, two words per thread
      const int q = threadIdx.x + i * kThreads, row = q >> 3, kw = q & 7;
      sa[kw][row] = load_word(a, p.lda, m0 + row, p.M, k0 + 4 * kw, p.K);
      sb[kw][row] = load_word(w, p.ldw, n0 + row, p.N, k0 + 4 * kw, p.K);
    }
    __syncthreads();
#pragma unroll
    for (int kw = 0; kw < kDpK / 4; ++kw) {
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = dot4<kUnsignedA>(sa[kw][ty + 16 * i], sb[kw][tx + 16 * j], acc[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) store_out(p, m0 + ty + 16 * i, n0 + tx + 16 * j, acc[i][j]);
}

using BigTile = MmaConfig<128, 128, 2, 4, 4>;
using SmallTile = MmaConfig<64, 64, 2, 2, 4>;

int device_attribute(cudaDeviceAttr attr) {
  int dev = 0, v = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&v, attr, dev) != cudaSuccess) return 0;
  return v;
}

bool use_mma(const CudaInt8GemmParams& p) {
  const auto aligned = [](const void* q) { return (reinterpret_cast<uintptr_t>(q) & 15) == 0; };
  return p.kernels != CudaGemmKernels::Dp4a && device_attribute(cudaDevAttrComputeCapabilityMajor) >= 8 &&
         p.K % 16 == 0 && p.lda % 16 == 0 && p.ldw % 16 == 0 && aligned(p.a) && aligned(p.w);
}

enum class Kernel { Dp4a, MmaSmall, MmaBig, Wgmma };

Kernel pick(const CudaInt8GemmParams& p) {
  if (!use_mma(p)) return Kernel::Dp4a;
  const int64_t sms = device_attribute(cudaDevAttrMultiProcessorCount);
  if (p.kernels >= CudaGemmKernels::Wgmma && device_attribute(cudaDevAttrComputeCapabilityMajor) == 9 &&
      device_attribute(cudaDevAttrComputeCapabilityMinor) == 0 && int8_gemm_sm90_built() &&
      int8_gemm_sm90_fits(p)) {
    // Measured on an H200: the persistent 128 x 128 kernel beats mma.sync once every SM gets about
    // four tiles (1.66x on 4096^3); at one to two tiles per SM the last partial round costs more.
    if (p.kernels == CudaGemmKernels::WgmmaOnly || ceil_div(p.M, 128) * ceil_div(p.N, 128) >= 4 * sms)
      return Kernel::Wgmma;
  }
  // Big tiles when they still give every SM a CTA; small tiles for skinny problems. (Measured on an
  // H200: 128 x 256 x 128-byte tiles with 64 x 64 warp tiles, one CTA per SM, ran 0.56x as fast.)
  return ceil_div(p.M, BigTile::BM) * ceil_div(p.N, BigTile::BN) >= sms ? Kernel::MmaBig : Kernel::MmaSmall;
}

template <class Cfg, bool kUnsignedA>
cudaError_t launch_mma(const CudaInt8GemmParams& p, cudaStream_t stream) {
  const auto kernel = mma_gemm_kernel<Cfg, kUnsignedA>;
  cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, Cfg::kSmemBytes);
  if (e != cudaSuccess) return e;
  const dim3 grid(static_cast<unsigned>(ceil_div(p.M, Cfg::BM)), static_cast<unsigned>(ceil_div(p.N, Cfg::BN)));
  kernel<<<grid, Cfg::kThreads, Cfg::kSmemBytes, stream>>>(p);
  return cudaGetLastError();
}

template <bool kUnsignedA>
cudaError_t launch_gemm(const CudaInt8GemmParams& p, cudaStream_t stream) {
  switch (pick(p)) {
    case Kernel::Wgmma: return launch_int8_gemm_sm90(p, device_attribute(cudaDevAttrMultiProcessorCount), stream);
    case Kernel::MmaBig: return launch_mma<BigTile, kUnsignedA>(p, stream);
    case Kernel::MmaSmall: return launch_mma<SmallTile, kUnsignedA>(p, stream);
    case Kernel::Dp4a: break;
  }
  const dim3 grid(static_cast<unsigned>(ceil_div(p.M, kDpTile)), static_cast<unsigned>(ceil_div(p.N, kDpTile)));
  dp4a_gemm_kernel<kUnsignedA><<<grid, kThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace
}  // namespace cuda

int64_t int8_gemm_workspace_ints(const CudaInt8GemmParams& p) { return cuda::has_zero_points(p) ? p.M + p.N : 0; }

const char* int8_gemm_kernel_name(const CudaInt8GemmParams& p) {
  switch (cuda::pick(p)) {
    case cuda::Kernel::Wgmma: return "wgmma";
    case cuda::Kernel::MmaBig:
    case cuda::Kernel::MmaSmall: return "mma";
    case cuda::Kernel::Dp4a: break;
  }
  return "dp4a";
}

cudaError_t launch_int8_gemm(const CudaInt8GemmParams& p, cudaStream_t stream) {
  if (p.M <= 0 || p.N <= 0) return cudaSuccess;
  // Grid limits: y (N tiles) at most 65535, x (M tiles) at most 2^31 - 1.
  if (cuda::ceil_div(p.N, cuda::kDpTile) > 65535 || cuda::ceil_div(p.M, cuda::kDpTile) > cuda::kMaxBlocks)
    return cudaErrorInvalidValue;
  if (cuda::has_zero_points(p)) {
    const int64_t blocks = cuda::ceil_div((p.M + p.N) * 32, cuda::kThreads);
    cuda::row_sums_kernel<<<static_cast<unsigned>(blocks), cuda::kThreads, 0, stream>>>(p);
    const cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return e;
  }
  return p.a_unsigned ? cuda::launch_gemm<true>(p, stream) : cuda::launch_gemm<false>(p, stream);
}

}  // namespace fakequant
