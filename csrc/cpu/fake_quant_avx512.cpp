// fake_quant_avx512.cpp — AVX-512 fake-quant kernels: 16 lanes, masked tails, fp32/fp16/bf16 I/O.
#include "fake_quant.h"
#include "simd_avx512.h"

namespace fakequant {
namespace {

// The quantize primitive on 16 lanes: writes y, returns the mask bits (see fake_quant_element).
// kRelu: of relu(x) (max with 0 as the second operand keeps a NaN), the bit also needing x > 0; *r
// gets the ReLU's own bits, !(x <= 0).
template <bool kCast, bool kRelu_>
struct Lanes {
  static constexpr bool kRelu = kRelu_;
  __m512 lo, hi;
  Lanes(float qmin, float qmax) : lo(_mm512_set1_ps(qmin)), hi(_mm512_set1_ps(qmax)) {}
  inline __m512 apply(__m512 x, __m512 inv, __m512 zp, __m512 s, __mmask16* m, __mmask16* r) const {
    __mmask16 pos = 0xffff;
    if constexpr (kRelu) {
      pos = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GT_OQ);
      *r = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_NLE_UQ);
      x = _mm512_max_ps(_mm512_setzero_ps(), x);
    }
    const __m512 rx = _mm512_roundscale_ps(_mm512_mul_ps(x, inv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 qf = _mm512_add_ps(zp, rx);
    if constexpr (kCast) qf = int64_cast16(qf);
    *m = _mm512_cmp_ps_mask(qf, lo, _CMP_GE_OQ) & _mm512_cmp_ps_mask(qf, hi, _CMP_LE_OQ) & pos;
    const __m512 q = _mm512_min_ps(_mm512_max_ps(qf, lo), hi);  // max first: NaN -> quant_min
    return _mm512_mul_ps(_mm512_sub_ps(q, zp), s);
  }
};

// Four 16-bit lane masks as one 64-bit mask word.
static inline uint64_t word64(const __mmask16 (&k)[4]) {
  return uint64_t(k[0]) | uint64_t(k[1]) << 16 | uint64_t(k[2]) << 32 | uint64_t(k[3]) << 48;
}

// One unit-stride row whose elements share one channel: 64 elements (one mask word) per step,
// then 16-lane steps, then a masked tail.
template <DType T, class L_, bool kMask>
void fq_row_const(const L_& L, float s, float zp, const char* x, char* y, int64_t n, BitWriter& bw, BitWriter& br) {
  constexpr int64_t es = T == DType::F32 ? 4 : 2;
  const __m512 vs = _mm512_set1_ps(s), vzp = _mm512_set1_ps(zp), vinv = _mm512_set1_ps(inv_scale_of(s));
  int64_t i = 0;
  __mmask16 m[4], r[4];
  for (; i + 64 <= n; i += 64) {
    for (int j = 0; j < 4; ++j)
      store16<T>(y + (i + 16 * j) * es, L.apply(load16<T>(x + (i + 16 * j) * es), vinv, vzp, vs, &m[j], &r[j]));
    if constexpr (kMask) {
      bw.put(word64(m), 64);
      if constexpr (L_::kRelu) br.put(word64(r), 64);
    }
  }
  for (; i < n; i += 16) {
    const int w = n - i >= 16 ? 16 : static_cast<int>(n - i);
    const __mmask16 k = static_cast<__mmask16>((1u << w) - 1);
    store16<T>(y + i * es, k, L.apply(load16<T>(x + i * es, k), vinv, vzp, vs, &m[0], &r[0]));
    if constexpr (kMask) {
      bw.put(m[0] & k, w);
      if constexpr (L_::kRelu) br.put(r[0] & k, w);
    }
  }
}

// One unit-stride row whose channel changes with every element (channels innermost).
template <DType T, class L_, bool kMask>
void fq_row_vary(const L_& L, const float* s, const float* zp, const char* x, char* y, int64_t n, BitWriter& bw,
                 BitWriter& br) {
  constexpr int64_t es = T == DType::F32 ? 4 : 2;
  for (int64_t i = 0; i < n; i += 16) {
    const int w = n - i >= 16 ? 16 : static_cast<int>(n - i);
    const __mmask16 k = static_cast<__mmask16>((1u << w) - 1);
    const __m512 vs = _mm512_mask_loadu_ps(_mm512_set1_ps(1.f), k, s + i);
    const __m512 vinv = _mm512_div_ps(_mm512_set1_ps(1.f), vs);
    __mmask16 m, r;
    store16<T>(y + i * es, k,
               L.apply(load16<T>(x + i * es, k), vinv, _mm512_maskz_loadu_ps(k, zp + i), vs, &m, &r));
    if constexpr (kMask) {
      bw.put(m & k, w);
      if constexpr (L_::kRelu) br.put(r & k, w);
    }
  }
}

template <DType T, bool kCast, bool kMask, bool kRelu>
void fq_range_vec(const FakeQuantParams& p, int64_t begin, int64_t end) {
  using L_ = Lanes<kCast, kRelu>;
  const L_ L(p.quant_min, p.quant_max);
  fake_quant_rows<T>(p, begin, end, [&](bool per_lane, int64_t c, const char* x, char* y, int64_t n, BitWriter& bw,
                                        BitWriter& br) {
    if (per_lane) {
      fq_row_vary<T, L_, kMask>(L, p.scale + c, p.zero_point + c, x, y, n, bw, br);
    } else {
      fq_row_const<T, L_, kMask>(L, p.scale[c], p.zero_point[c], x, y, n, bw, br);
    }
    return n;  // masked tails: the whole row
  });
}

// dy * mask; with kRelu also +0 where the fused ReLU's bit (relu) is clear.
// The ReLU's zeroing is an AND with a lane mask: a zero-masked multiply would take dy from memory under
// the mask, which runs at less than half speed on AMD Zen 4.
template <bool kRelu>
static inline __m512 grad16(__m512 dy, __mmask16 bits, __mmask16 relu) {
  const __m512 g = _mm512_mul_ps(dy, _mm512_maskz_mov_ps(bits, _mm512_set1_ps(1.f)));
  if constexpr (kRelu) return _mm512_and_ps(g, _mm512_castsi512_ps(_mm512_maskz_mov_epi32(relu, _mm512_set1_epi32(-1))));
  return g;
}

template <DType T, bool kRelu>
void grad_range(const MaskGradParams& p, int64_t begin, int64_t end) {
  constexpr int64_t es = T == DType::F32 ? 4 : 2;
  for_each_row(p.it, begin, end, [&](int64_t lin, const int64_t*, int64_t in_off, int64_t out_off, int64_t n) {
    const char* dy = static_cast<const char*>(p.dy) + in_off * es;
    char* dx = static_cast<char*>(p.dx) + out_off * es;
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
      const uint64_t bits = read_bits(p.mask, lin + i, 64);
      const uint64_t relu = kRelu ? read_bits(p.relu_mask, lin + i, 64) : 0;
      for (int j = 0; j < 4; ++j) {
        const __mmask16 k = static_cast<__mmask16>(bits >> (16 * j)), kr = static_cast<__mmask16>(relu >> (16 * j));
        store16<T>(dx + (i + 16 * j) * es, grad16<kRelu>(load16<T>(dy + (i + 16 * j) * es), k, kr));
      }
    }
    for (; i < n; i += 16) {
      const int w = n - i >= 16 ? 16 : static_cast<int>(n - i);
      const __mmask16 k = static_cast<__mmask16>((1u << w) - 1);
      const __mmask16 bits = static_cast<__mmask16>(read_bits(p.mask, lin + i, w));
      const __mmask16 relu = kRelu ? static_cast<__mmask16>(read_bits(p.relu_mask, lin + i, w)) : 0;
      store16<T>(dx + i * es, k, grad16<kRelu>(load16<T>(dy + i * es, k), bits, relu));
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
                     [&](auto t, auto r) { grad_range<decltype(t)::value, decltype(r)::value>(p, begin, end); });
}

}  // namespace fakequant
