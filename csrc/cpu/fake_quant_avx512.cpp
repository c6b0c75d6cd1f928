// fake_quant_avx512.cpp — AVX-512 fake-quant kernels: 16 lanes, masked tails, fp32/fp16/bf16 I/O.
#include "fake_quant.h"
#include "simd_avx512.h"

namespace fakequant {
namespace {

// The quantize primitive on 16 lanes: writes y, returns the mask bits (see fake_quant_element).
// kRelu: of relu(x) (max with 0 as the second operand keeps a NaN), the bit also needing x > 0.
template <bool kCast, bool kRelu>
struct Lanes {
  __m512 lo, hi;
  Lanes(float qmin, float qmax) : lo(_mm512_set1_ps(qmin)), hi(_mm512_set1_ps(qmax)) {}
  inline __m512 apply(__m512 x, __m512 inv, __m512 zp, __m512 s, __mmask16* m) const {
    __mmask16 pos = 0xffff;
    if constexpr (kRelu) {
      pos = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GT_OQ);
      x = _mm512_max_ps(_mm512_setzero_ps(), x);
    }
    const __m512 r = _mm512_roundscale_ps(_mm512_mul_ps(x, inv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 qf = _mm512_add_ps(zp, r);
    if constexpr (kCast) qf = int64_cast16(qf);
    *m = _mm512_cmp_ps_mask(qf, lo, _CMP_GE_OQ) & _mm512_cmp_ps_mask(qf, hi, _CMP_LE_OQ) & pos;
    const __m512 q = _mm512_min_ps(_mm512_max_ps(qf, lo), hi);  // max first: NaN -> quant_min
    return _mm512_mul_ps(_mm512_sub_ps(q, zp), s);
  }
};

// One unit-stride row whose elements share one channel: 64 elements (one mask word) per step,
// then 16-lane steps, then a masked tail.
template <DType T, class L_, bool kMask>
void fq_row_const(const L_& L, float s, float zp, const char* x, char* y, int64_t n, BitWriter& bw) {
  constexpr int64_t es = T == DType::F32 ? 4 : 2;
  const __m512 vs = _mm512_set1_ps(s), vzp = _mm512_set1_ps(zp), vinv = _mm512_set1_ps(inv_scale_of(s));
  int64_t i = 0;
  __mmask16 m0, m1, m2, m3;
  for (; i + 64 <= n; i += 64) {
    store16<T>(y + i * es, L.apply(load16<T>(x + i * es), vinv, vzp, vs, &m0));
    store16<T>(y + (i + 16) * es, L.apply(load16<T>(x + (i + 16) * es), vinv, vzp, vs, &m1));
    store16<T>(y + (i + 32) * es, L.apply(load16<T>(x + (i + 32) * es), vinv, vzp, vs, &m2));
    store16<T>(y + (i + 48) * es, L.apply(load16<T>(x + (i + 48) * es), vinv, vzp, vs, &m3));
    if constexpr (kMask)
      bw.put(uint64_t(m0) | uint64_t(m1) << 16 | uint64_t(m2) << 32 | uint64_t(m3) << 48, 64);
  }
  for (; i < n; i += 16) {
    const int w = n - i >= 16 ? 16 : static_cast<int>(n - i);
    const __mmask16 k = static_cast<__mmask16>((1u << w) - 1);
    store16<T>(y + i * es, k, L.apply(load16<T>(x + i * es, k), vinv, vzp, vs, &m0));
    if constexpr (kMask) bw.put(m0 & k, w);
  }
}

// One unit-stride row whose channel changes with every element (channels innermost).
template <DType T, class L_, bool kMask>
void fq_row_vary(const L_& L, const float* s, const float* zp, const char* x, char* y, int64_t n,
                 BitWriter& bw) {
  constexpr int64_t es = T == DType::F32 ? 4 : 2;
  for (int64_t i = 0; i < n; i += 16) {
    const int w = n - i >= 16 ? 16 : static_cast<int>(n - i);
    const __mmask16 k = static_cast<__mmask16>((1u << w) - 1);
    const __m512 vs = _mm512_mask_loadu_ps(_mm512_set1_ps(1.f), k, s + i);
    const __m512 vinv = _mm512_div_ps(_mm512_set1_ps(1.f), vs);
    __mmask16 m;
    store16<T>(y + i * es, k, L.apply(load16<T>(x + i * es, k), vinv, _mm512_maskz_loadu_ps(k, zp + i), vs, &m));
    if constexpr (kMask) bw.put(m & k, w);
  }
}

template <DType T, bool kCast, bool kMask, bool kRelu>
void fq_range_vec(const FakeQuantParams& p, int64_t begin, int64_t end) {
  using L_ = Lanes<kCast, kRelu>;
  const L_ L(p.quant_min, p.quant_max);
  fake_quant_rows<T>(p, begin, end, [&](bool per_lane, int64_t c, const char* x, char* y, int64_t n, BitWriter& bw) {
    if (per_lane) {
      fq_row_vary<T, L_, kMask>(L, p.scale + c, p.zero_point + c, x, y, n, bw);
    } else {
      fq_row_const<T, L_, kMask>(L, p.scale[c], p.zero_point[c], x, y, n, bw);
    }
    return n;  // masked tails: the whole row
  });
}

// dy * mask, or with kSelect dy where the bit is set and +0 elsewhere.
template <bool kSelect>
static inline __m512 grad16(__m512 dy, __mmask16 bits) {
  if constexpr (kSelect) return _mm512_maskz_mov_ps(bits, dy);
  return _mm512_mul_ps(dy, _mm512_maskz_mov_ps(bits, _mm512_set1_ps(1.f)));
}

template <DType T, bool kSelect>
void grad_range(const MaskGradParams& p, int64_t begin, int64_t end) {
  constexpr int64_t es = T == DType::F32 ? 4 : 2;
  for_each_row(p.it, begin, end, [&](int64_t lin, const int64_t*, int64_t in_off, int64_t out_off, int64_t n) {
    const char* dy = static_cast<const char*>(p.dy) + in_off * es;
    char* dx = static_cast<char*>(p.dx) + out_off * es;
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
      const uint64_t bits = read_bits(p.mask, lin + i, 64);
      for (int j = 0; j < 4; ++j) {
        const __mmask16 k = static_cast<__mmask16>(bits >> (16 * j));
        store16<T>(dx + (i + 16 * j) * es, grad16<kSelect>(load16<T>(dy + (i + 16 * j) * es), k));
      }
    }
    for (; i < n; i += 16) {
      const int w = n - i >= 16 ? 16 : static_cast<int>(n - i);
      const __mmask16 k = static_cast<__mmask16>((1u << w) - 1);
      const __mmask16 bits = static_cast<__mmask16>(read_bits(p.mask, lin + i, w));
      store16<T>(dx + i * es, k, grad16<kSelect>(load16<T>(dy + i * es, k), bits));
    }
  });
}

}  // namespace

void fake_quant_avx512(const FakeQuantParams& p, int64_t begin, int64_t end) {
  dispatch_fake_quant(p, begin, end, [&](auto t, auto cast, auto mask, auto relu) {
    fq_range_vec<decltype(t)::value, decltype(cast)::value, decltype(mask)::value, decltype(relu)::value>(p, begin,
                                                                                                        end);
  });
}

void mask_grad_avx512(const MaskGradParams& p, int64_t begin, int64_t end) {
  dispatch_mask_grad(p, begin, end,
                     [&](auto t, auto s) { grad_range<decltype(t)::value, decltype(s)::value>(p, begin, end); });
}

}  // namespace fakequant
