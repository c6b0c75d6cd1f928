// fake_quant_avx2.cpp — AVX2 fake-quant kernels: 8 lanes, scalar tails, fp32/fp16/bf16 I/O.
#include "fake_quant.h"
#include "simd_avx2.h"

namespace fakequant {
namespace {

// The quantize primitive on 8 lanes: returns y and the mask bits (see fake_quant_element).
// kRelu: of relu(x) (max with 0 as the second operand keeps a NaN), the bit also needing x > 0; *r
// gets the ReLU's own bits, !(x <= 0).
template <bool kCast, bool kRelu_>
struct Lanes {
  static constexpr bool kRelu = kRelu_;
  __m256 lo, hi;
  Lanes(float qmin, float qmax) : lo(_mm256_set1_ps(qmin)), hi(_mm256_set1_ps(qmax)) {}
  inline __m256 apply(__m256 x, __m256 inv, __m256 zp, __m256 s, uint32_t* m, uint32_t* r) const {
    __m256 pos = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
    if constexpr (kRelu) {
      pos = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GT_OQ);
      *r = static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_NLE_UQ)));
      x = _mm256_max_ps(_mm256_setzero_ps(), x);
    }
    const __m256 rx = _mm256_round_ps(_mm256_mul_ps(x, inv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 qf = _mm256_add_ps(zp, rx);
    if constexpr (kCast) qf = int64_cast8(qf);
    const __m256 in = _mm256_and_ps(_mm256_cmp_ps(qf, lo, _CMP_GE_OQ), _mm256_cmp_ps(qf, hi, _CMP_LE_OQ));
    *m = static_cast<uint32_t>(_mm256_movemask_ps(_mm256_and_ps(in, pos)));
    const __m256 q = _mm256_min_ps(_mm256_max_ps(qf, lo), hi);  // max first: NaN -> quant_min
    return _mm256_mul_ps(_mm256_sub_ps(q, zp), s);
  }
};

// Full vectors of one unit-stride row (64 elements = one mask word per step while they last);
// returns how many elements it did, a multiple of 8. kVary: channels innermost.
template <DType T, bool kVary, class L_, bool kMask>
int64_t fq_row(const L_& L, const float* s, const float* zp, const char* x, char* y, int64_t n, BitWriter& bw,
               BitWriter& br) {
  constexpr int64_t es = T == DType::F32 ? 4 : 2;
  __m256 vs = _mm256_set1_ps(s[0]), vzp = _mm256_set1_ps(zp[0]), vinv = _mm256_set1_ps(inv_scale_of(s[0]));
  uint32_t r = 0;
  auto step = [&](int64_t i) {
    if constexpr (kVary) {
      vs = _mm256_loadu_ps(s + i);
      vzp = _mm256_loadu_ps(zp + i);
      vinv = _mm256_div_ps(_mm256_set1_ps(1.f), vs);
    }
    uint32_t m;
    store8<T>(y + i * es, L.apply(load8<T>(x + i * es), vinv, vzp, vs, &m, &r));
    return m;
  };
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    uint64_t word = 0, relu = 0;
    for (int j = 0; j < 8; ++j) {
      word |= static_cast<uint64_t>(step(i + 8 * j)) << (8 * j);
      relu |= static_cast<uint64_t>(r) << (8 * j);
    }
    if constexpr (kMask) {
      bw.put(word, 64);
      if constexpr (L_::kRelu) br.put(relu, 64);
    }
  }
  for (; i + 8 <= n; i += 8) {
    const uint32_t m = step(i);
    if constexpr (kMask) {
      bw.put(m, 8);
      if constexpr (L_::kRelu) br.put(r, 8);
    }
  }
  return i;
}

template <DType T, bool kCast, bool kMask, bool kRelu>
void fq_range_vec(const FakeQuantParams& p, int64_t begin, int64_t end) {
  using L_ = Lanes<kCast, kRelu>;
  const L_ L(p.quant_min, p.quant_max);
  fake_quant_rows<T>(p, begin, end, [&](bool per_lane, int64_t c, const char* x, char* y, int64_t n, BitWriter& bw,
                                        BitWriter& br) {
    return per_lane ? fq_row<T, true, L_, kMask>(L, p.scale + c, p.zero_point + c, x, y, n, bw, br)
                    : fq_row<T, false, L_, kMask>(L, p.scale + c, p.zero_point + c, x, y, n, bw, br);
  });
}

// 8 lanes of all-ones where bit j of b is set.
static inline __m256 lanes_of(uint64_t b) {
  const __m256i bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  return _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32(static_cast<int>(b)), bit), bit));
}

// dy * mask; with kRelu also +0 where the fused ReLU's bit is clear.
template <DType T, bool kRelu>
void grad_range(const MaskGradParams& p, int64_t begin, int64_t end) {
  constexpr int64_t es = T == DType::F32 ? 4 : 2;
  const __m256 one = _mm256_set1_ps(1.f);
  for_each_row(p.it, begin, end, [&](int64_t lin, const int64_t*, int64_t in_off, int64_t out_off, int64_t n) {
    const char* dy = static_cast<const char*>(p.dy) + in_off * es;
    char* dx = static_cast<char*>(p.dx) + out_off * es;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
      __m256 g = _mm256_mul_ps(load8<T>(dy + i * es), _mm256_and_ps(lanes_of(read_bits(p.mask, lin + i, 8)), one));
      if constexpr (kRelu) g = _mm256_and_ps(lanes_of(read_bits(p.relu_mask, lin + i, 8)), g);
      store8<T>(dx + i * es, g);
    }
    if (i < n) mask_grad_row_scalar(p, lin + i, in_off + i, out_off + i, n - i);
  });
}

}  // namespace

void fake_quant_avx2(const FakeQuantParams& p, int64_t begin, int64_t end) {
  dispatch_fake_quant(p, begin, end, [&](auto t, auto cast, auto mask, auto relu) {
    fq_range_vec<decltype(t)::value, decltype(cast)::value, decltype(mask)::value, decltype(relu)::value>(p, begin,
                                                                                                        end);
  });
}

void mask_grad_avx2(const MaskGradParams& p, int64_t begin, int64_t end) {
  dispatch_mask_grad(p, begin, end,
                     [&](auto t, auto r) { grad_range<decltype(t)::value, decltype(r)::value>(p, begin, end); });
}

}  // namespace fakequant
