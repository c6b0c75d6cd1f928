// fake_quant_avx2.cpp — AVX2 fake-quant kernels: 8 lanes, scalar tails, fp32/fp16/bf16 I/O.
#include "fake_quant.h"
#include "simd_avx2.h"

namespace fakequant {
namespace {

// Full vectors of one unit-stride row; returns how many elements it did (a multiple of 8).
template <DType T, bool kVary>
int64_t fq_row(const FakeQuantParams& p, const float* s, const float* zp, const void* xv, void* yv,
               int64_t n, BitWriter& bw) {
  const auto* x = static_cast<const char*>(xv);
  auto* y = static_cast<char*>(yv);
  constexpr int64_t es = T == DType::F32 ? 4 : 2;
  const __m256 lo = _mm256_set1_ps(p.quant_min), hi = _mm256_set1_ps(p.quant_max);
  __m256 vs = _mm256_set1_ps(s[0]), vzp = _mm256_set1_ps(zp[0]);
  __m256 vinv = _mm256_set1_ps(inv_scale_of(s[0]));
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    if constexpr (kVary) {
      vs = _mm256_loadu_ps(s + i);
      vzp = _mm256_loadu_ps(zp + i);
      vinv = _mm256_div_ps(_mm256_set1_ps(1.f), vs);
    }
    const __m256 xf = load8<T>(x + i * es);
    const __m256 rounded = _mm256_round_ps(_mm256_mul_ps(xf, vinv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 qf = _mm256_add_ps(vzp, rounded);
    if (p.int64_cast) qf = int64_cast8(qf);
    const __m256 m = _mm256_and_ps(_mm256_cmp_ps(qf, lo, _CMP_GE_OQ), _mm256_cmp_ps(qf, hi, _CMP_LE_OQ));
    const __m256 q = _mm256_min_ps(_mm256_max_ps(qf, lo), hi);  // max first: NaN -> quant_min
    store8<T>(y + i * es, _mm256_mul_ps(_mm256_sub_ps(q, vzp), vs));
    if (bw.active()) bw.put(static_cast<uint64_t>(_mm256_movemask_ps(m)), 8);
  }
  return i;
}

template <DType T>
void fq_range(const FakeQuantParams& p, int64_t begin, int64_t end) {
  BitWriter bw(p.mask, begin);
  const int last = p.it.ndim - 1;
  const bool vec = vector_rows(p.it) && p.zp_mode == ZeroPointMode::RoundThenAdd;
  for_each_row(p.it, begin, end, [&](int64_t, const int64_t* idx, int64_t in_off, int64_t out_off, int64_t n) {
    int64_t done = 0;
    if (vec) {
      const int64_t c = p.ch_dim < 0 ? 0 : idx[p.ch_dim];
      const void* x = static_cast<const char*>(p.x) + in_off * elem_size(T);
      void* y = static_cast<char*>(p.y) + out_off * elem_size(T);
      done = p.ch_dim == last ? fq_row<T, true>(p, p.scale + c, p.zero_point + c, x, y, n, bw)
                              : fq_row<T, false>(p, p.scale + c, p.zero_point + c, x, y, n, bw);
    }
    if (done == n) return;
    int64_t tail_idx[kMaxDims];
    for (int d = 0; d <= last; ++d) tail_idx[d] = idx[d];
    tail_idx[last] += done;
    fake_quant_row_scalar(p, tail_idx, in_off + done * p.it.in_stride[last],
                          out_off + done * p.it.out_stride[last], n - done, bw);
  });
}

template <DType T>
void grad_range(const MaskGradParams& p, int64_t begin, int64_t end) {
  constexpr int64_t es = T == DType::F32 ? 4 : 2;
  const __m256i bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  const __m256 one = _mm256_set1_ps(1.f);
  for_each_row(p.it, begin, end, [&](int64_t lin, const int64_t*, int64_t in_off, int64_t out_off, int64_t n) {
    int64_t i = 0;
    if (vector_rows(p.it)) {
      const char* dy = static_cast<const char*>(p.dy) + in_off * es;
      char* dx = static_cast<char*>(p.dx) + out_off * es;
      for (; i + 8 <= n; i += 8) {
        const __m256i b = _mm256_set1_epi32(static_cast<int>(read_bits(p.mask, lin + i, 8)));
        const __m256 on = _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(b, bit), bit));
        store8<T>(dx + i * es, _mm256_mul_ps(load8<T>(dy + i * es), _mm256_and_ps(on, one)));
      }
    }
    if (i < n) {
      const int last = p.it.ndim - 1;
      mask_grad_row_scalar(p, lin + i, in_off + i * p.it.in_stride[last], out_off + i * p.it.out_stride[last], n - i);
    }
  });
}

}  // namespace

void fake_quant_avx2(const FakeQuantParams& p, int64_t begin, int64_t end) {
  switch (p.dtype) {
    case DType::F32: return fq_range<DType::F32>(p, begin, end);
    case DType::F16: return fq_range<DType::F16>(p, begin, end);
    case DType::BF16: return fq_range<DType::BF16>(p, begin, end);
    default: return fake_quant_ref(p, begin, end);
  }
}

void mask_grad_avx2(const MaskGradParams& p, int64_t begin, int64_t end) {
  switch (p.dtype) {
    case DType::F32: return grad_range<DType::F32>(p, begin, end);
    case DType::F16: return grad_range<DType::F16>(p, begin, end);
    case DType::BF16: return grad_range<DType::BF16>(p, begin, end);
    default: return mask_grad_ref(p, begin, end);
  }
}

}  // namespace fakequant
