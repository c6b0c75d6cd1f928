// int8_gemm_sm90.cu — Hopper int8 GEMM: TMA tile loads, wgmma, a producer warpgroup and two consumer warpgroups, persistent CTAs.
//
// out[M, N] = a[M, K] . w[N, K]^T as in int8_gemm.cu, for sm_90a. A CTA owns 128 x 128 output tiles
// in turn (tile blockIdx.x, then + gridDim.x, ...). Warpgroup 0 gives its
// registers away and one of its threads streams 128-byte-wide K slices of a and w into a ring of
// shared-memory stages with TMA (zero fill past M, N and K), each stage guarded by a `full` and an
// `empty` mbarrier. Warpgroups 1 and 2 take rows 0-63 and 64-127 of the tile: per stage four
// wgmma m64n128k32 from the swizzled tiles into int32 registers, keeping one stage's wgmma in flight
// while the next is issued, then the shared epilogue (gemm_epilogue.cuh). The producer runs ahead
// into the next tile while the consumers store.
#include <cuda.h>
#include <cudaTypedefs.h>

#include "common.cuh"
#include "gemm_epilogue.cuh"
#include "int8_gemm_sm90.h"
#include "sm90.cuh"

namespace fakequant {
namespace cuda {
namespace {

// Tile rows (BM), columns (BN), bytes of K per stage (BK: one 128-byte swizzle row), stages. (Measured
// on an H200: 128 x 256 tiles with four stages ran 0.42x as fast on 4096^3.)
constexpr int kBM = 128, kBN = 128, kBK = 128, kStages = 6, kSm90Threads = 384;
constexpr int kStageBytes = (kBM + kBN) * kBK;
// The stages, their 2 x kStages barriers, and slack to align the stages to 1024 bytes.
constexpr int kSmemBytes = kStages * kStageBytes + 2 * kStages * 8 + 1024;

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
template <bool kUnsignedA>
__device__ __forceinline__ void wgmma_tile(int32_t (&d)[kBN / 2], uint64_t a, uint64_t b) {
  if constexpr (kUnsignedA) {
    sm90::wgmma_m64n128k32_u8(d, a, b, 1);
  } else {
    sm90::wgmma_m64n128k32_s8(d, a, b, 1);
  }
}
#endif

template <bool kUnsignedA>
__global__ void __launch_bounds__(kSm90Threads, 1)
    wgmma_gemm_kernel(const __grid_constant__ CUtensorMap map_a, const __grid_constant__ CUtensorMap map_w,
                      CudaInt8GemmParams p) {
#if !defined(__CUDA_ARCH_FEAT_SM90_ALL)
  __trap();  // launch_int8_gemm_sm90 runs only where the sm_90a build is loaded
#else
  constexpr int S = kStages, BN = kBN;
  extern __shared__ uint8_t smem_raw[];
  uint8_t* smem = smem_raw + ((1024 - (sm90::smem_u32(smem_raw) & 1023)) & 1023);
  uint64_t* full = reinterpret_cast<uint64_t*>(smem + S * kStageBytes);
  uint64_t* empty = full + S;
  if (threadIdx.x == 0) {
    for (int s = 0; s < S; ++s) {
      sm90::mbar_init(&full[s], 1);   // the producer's arrive, plus the stage's TMA bytes
      sm90::mbar_init(&empty[s], 8);  // one arrive per consumer warp
    }
    sm90::mbar_init_fence();
  }
  __syncthreads();
  const int64_t mtiles = (p.M + kBM - 1) / kBM, tiles = mtiles * ((p.N + BN - 1) / BN);
  const int ktiles = static_cast<int>((p.K + kBK - 1) / kBK);
  const int wg = threadIdx.x / 128;
  if (wg == 0) {
    sm90::set_max_regs_dec<40>();
    if (threadIdx.x != 0) return;
    uint32_t it = 0;  // stage uses so far: stage it % S, its round it / S gives the barrier parity
    for (int64_t t = blockIdx.x; t < tiles; t += gridDim.x) {
      const int32_t m0 = static_cast<int32_t>(t % mtiles * kBM), n0 = static_cast<int32_t>(t / mtiles * BN);
      for (int kt = 0; kt < ktiles; ++kt, ++it) {
        const uint32_t s = it % S;
        sm90::mbar_wait(&empty[s], ((it / S) & 1) ^ 1);  // the first round finds every stage free
        uint8_t* stage = smem + s * kStageBytes;
        sm90::mbar_arrive_expect_tx(&full[s], kStageBytes);
        sm90::tma_load_2d(stage, &map_a, kt * kBK, m0, &full[s]);
        sm90::tma_load_2d(stage + kBM * kBK, &map_w, kt * kBK, n0, &full[s]);
      }
    }
    return;
  }
  sm90::set_max_regs_inc<232>();
  const int half = wg - 1, warp = (threadIdx.x / 32) % 4, lane = threadIdx.x % 32;
  uint32_t it = 0;
  for (int64_t t = blockIdx.x; t < tiles; t += gridDim.x) {
    int32_t acc[BN / 2];
#pragma unroll
    for (int i = 0; i < BN / 2; ++i) acc[i] = 0;
    sm90::fence_regs(acc);
    for (int kt = 0; kt < ktiles; ++kt, ++it) {
      const uint32_t s = it % S;
      sm90::mbar_wait(&full[s], (it / S) & 1);
      const uint8_t* stage = smem + s * kStageBytes;
      sm90::wgmma_fence();
#pragma unroll
      for (int k = 0; k < kBK / 32; ++k)  // 32 bytes of K per wgmma: the descriptor moves along the swizzled row
        wgmma_tile<kUnsignedA>(acc, sm90::smem_desc(stage + half * 64 * kBK + k * 32),
                                   sm90::smem_desc(stage + kBM * kBK + k * 32));
      sm90::wgmma_commit();
      sm90::wgmma_wait<1>();  // the previous stage's wgmma are done: hand that stage back
      if (kt > 0 && lane == 0) sm90::mbar_arrive(&empty[(it - 1) % S]);
    }
    sm90::wgmma_wait<0>();
    sm90::fence_regs(acc);
    if (ktiles > 0 && lane == 0) sm90::mbar_arrive(&empty[(it - 1) % S]);
    // Accumulator layout: acc[4i + v] at row 16 warp + lane / 4 (+ 8 for v >= 2), column 8i + 2 (lane % 4) + v % 2.
    const int64_t r = t % mtiles * kBM + half * 64 + warp * 16 + lane / 4;
    const int64_t c0 = t / mtiles * BN + (lane % 4) * 2;
#pragma unroll
    for (int i = 0; i < BN / 8; ++i) {
      store_out(p, r, c0 + 8 * i, acc[4 * i]);
      store_out(p, r, c0 + 8 * i + 1, acc[4 * i + 1]);
      store_out(p, r + 8, c0 + 8 * i, acc[4 * i + 2]);
      store_out(p, r + 8, c0 + 8 * i + 1, acc[4 * i + 3]);
    }
  }
#endif
}

using EncodeTiled = PFN_cuTensorMapEncodeTiled_v12000;

// The driver's tensor-map encoder, looked up once (no link against libcuda).
EncodeTiled encoder() {
  static const EncodeTiled fn = [] {
    void* f = nullptr;
    cudaDriverEntryPointQueryResult q;
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000, cudaEnableDefault, &q) != cudaSuccess ||
        q != cudaDriverEntryPointSuccess)
      return EncodeTiled{nullptr};
    return reinterpret_cast<EncodeTiled>(f);
  }();
  return fn;
}

// A [rows, k] byte matrix with row stride ld, read in boxes of `box_rows` rows x 128 bytes, swizzled.
bool make_map(CUtensorMap& map, const void* base, int64_t rows, int64_t k, int64_t ld, int box_rows) {
  const cuuint64_t dims[2] = {static_cast<cuuint64_t>(k), static_cast<cuuint64_t>(rows)};
  const cuuint64_t strides[1] = {static_cast<cuuint64_t>(ld)};
  const cuuint32_t box[2] = {kBK, static_cast<cuuint32_t>(box_rows)};
  const cuuint32_t elem_strides[2] = {1, 1};
  return encoder()(&map, CU_TENSOR_MAP_DATA_TYPE_UINT8, 2, const_cast<void*>(base), dims, strides, box,
                   elem_strides, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                   CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

template <bool kUnsignedA>
cudaError_t launch(const CudaInt8GemmParams& p, int sms, cudaStream_t stream) {
  CUtensorMap map_a, map_w;
  if (!make_map(map_a, p.a, p.M, p.K, p.lda, kBM) || !make_map(map_w, p.w, p.N, p.K, p.ldw, kBN))
    return cudaErrorInvalidValue;
  const auto kernel = wgmma_gemm_kernel<kUnsignedA>;
  const cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmemBytes);
  if (e != cudaSuccess) return e;
  const int64_t tiles = ceil_div(p.M, kBM) * ceil_div(p.N, kBN);
  const unsigned grid = static_cast<unsigned>(tiles < sms ? tiles : sms);
  kernel<<<grid, kSm90Threads, kSmemBytes, stream>>>(map_a, map_w, p);
  return cudaGetLastError();
}

}  // namespace
}  // namespace cuda

bool int8_gemm_sm90_built() {
#if defined(FAKEQUANT_SM90A)
  return cuda::encoder() != nullptr;
#else
  return false;
#endif
}

bool int8_gemm_sm90_fits(const CudaInt8GemmParams& p) {
  // TMA's rules beyond the 16-byte alignment every tensor-core kernel needs: rows at least K bytes
  // apart (no broadcast rows), coordinates in int32.
  return p.K > 0 && p.lda >= p.K && p.ldw >= p.K && p.M < (int64_t{1} << 31) && p.N < (int64_t{1} << 31) &&
         p.K < (int64_t{1} << 31);
}

cudaError_t launch_int8_gemm_sm90(const CudaInt8GemmParams& p, int sms, cudaStream_t stream) {
  return p.a_unsigned ? cuda::launch<true>(p, sms, stream) : cuda::launch<false>(p, sms, stream);
}

}  // namespace fakequant
