// fake_quant_avx512.cpp — AVX-512 fake-quant kernels: 16 lanes, masked tails, fp32/fp16/bf16 I/O.
#include "fake_quant.h"
#include "simd_avx512.h"

namespace fakequant {
namespace {

// One unit-stride row. kVary: the channel changes with every element (channels innermost).
template <DType T, bool kVary>
void fq_row(const FakeQuantParams& p, const float* s, const float* zp, const void* xv, void* yv,
            int64_t n, BitWriter& bw) {
  const auto* x = static_cast<const char*>(xv);
  auto* y = static_cast<char*>(yv);
  constexpr int64_t es = T == DType::F32 ? 4 : 2;
  const __m512 lo = _mm512_set1_ps(p.quant_min), hi = _mm512_set1_ps(p.quant_max);
  __m512 vs = _mm512_set1_ps(s[0]), vzp = _mm512_set1_ps(zp[0]);
  __m512 vinv = _mm512_set1_ps(inv_scale_of(s[0]));
  for (int64_t i = 0; i < n; i += 16) {
    const int64_t r = n - i;
    const __mmask16 k = lanes16(r);
    if constexpr (kVary) {
      vs = _mm512_mask_loadu_ps(_mm512_set1_ps(1.f), k, s + i);
      vzp = _mm512_maskz_loadu_ps(k, zp + i);
      vinv = _mm512_div_ps(_mm512_set1_ps(1.f), vs);
    }
    const __m512 xf = load16<T>(x + i * es, k);
    const __m512 rounded = _mm512_roundscale_ps(_mm512_mul_ps(xf, vinv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 qf = _mm512_add_ps(vzp, rounded);
    if (p.int64_cast) qf = int64_cast16(qf);
    const __mmask16 m = _mm512_cmp_ps_mask(qf, lo, _CMP_GE_OQ) & _mm512_cmp_ps_mask(qf, hi, _CMP_LE_OQ);
    const __m512 q = _mm512_min_ps(_mm512_max_ps(qf, lo), hi);  // max first: NaN -> quant_min
    store16<T>(y + i * es, k, _mm512_mul_ps(_mm512_sub_ps(q, vzp), vs));
    if (bw.active()) bw.put(m & k, r >= 16 ? 16 : static_cast<int>(r));
  }
}

template <DType T>
void fq_range(const FakeQuantParams& p, int64_t begin, int64_t end) {
  BitWriter bw(p.mask, begin);
  const int last = p.it.ndim - 1;
  const bool vec = vector_rows(p.it) && p.zp_mode == ZeroPointMode::RoundThenAdd;
  for_each_row(p.it, begin, end, [&](int64_t, const int64_t* idx, int64_t in_off, int64_t out_off, int64_t n) {
    if (!vec) return fake_quant_row_scalar(p, idx, in_off, out_off, n, bw);
    const int64_t c = p.ch_dim < 0 ? 0 : idx[p.ch_dim];
    const void* x = static_cast<const char*>(p.x) + in_off * elem_size(T);
    void* y = static_cast<char*>(p.y) + out_off * elem_size(T);
    if (p.ch_dim == last) {
      fq_row<T, true>(p, p.scale + c, p.zero_point + c, x, y, n, bw);
    } else {
      fq_row<T, false>(p, p.scale + c, p.zero_point + c, x, y, n, bw);
    }
  });
}

template <DType T>
void grad_range(const MaskGradParams& p, int64_t begin, int64_t end) {
  constexpr int64_t es = T == DType::F32 ? 4 : 2;
  const __m512 one = _mm512_set1_ps(1.f);
  for_each_row(p.it, begin, end, [&](int64_t lin, const int64_t*, int64_t in_off, int64_t out_off, int64_t n) {
    if (!vector_rows(p.it)) return mask_grad_row_scalar(p, lin, in_off, out_off, n);
    const char* dy = static_cast<const char*>(p.dy) + in_off * es;
    char* dx = static_cast<char*>(p.dx) + out_off * es;
    for (int64_t i = 0; i < n; i += 16) {
      const int64_t r = n - i;
      const int w = r >= 16 ? 16 : static_cast<int>(r);
      const __mmask16 k = static_cast<__mmask16>((1u << w) - 1);
      const __mmask16 bits = static_cast<__mmask16>(read_bits(p.mask, lin + i, w));
      store16<T>(dx + i * es, k, _mm512_mul_ps(load16<T>(dy + i * es, k), _mm512_maskz_mov_ps(bits, one)));
    }
  });
}

}  // namespace

void fake_quant_avx512(const FakeQuantParams& p, int64_t begin, int64_t end) {
  switch (p.dtype) {
    case DType::F32: return fq_range<DType::F32>(p, begin, end);
    case DType::F16: return fq_range<DType::F16>(p, begin, end);
    case DType::BF16: return fq_range<DType::BF16>(p, begin, end);
    default: return fake_quant_ref(p, begin, end);
  }
}

void mask_grad_avx512(const MaskGradParams& p, int64_t begin, int64_t end) {
  switch (p.dtype) {
    case DType::F32: return grad_range<DType::F32>(p, begin, end);
    case DType::F16: return grad_range<DType::F16>(p, begin, end);
    case DType::BF16: return grad_range<DType::BF16>(p, begin, end);
    default: return mask_grad_ref(p, begin, end);
  }
}

}  // namespace fakequant
