// int8_gemm_ref.cpp — scalar reference int8 GEMM + epilogue: the specification the vector kernels match.
#include "int8_gemm.h"

namespace fakequant {

void int8_gemm_ref(const Int8GemmParams& p, int64_t m0, int64_t m1, int64_t nb0, int64_t nb1) {
  const int64_t k = p.b.k, kp = packed_k(k);
  const int64_t n1 = std::min(nb1 * kNB, p.b.n);
  for (int64_t m = m0; m < m1; ++m) {
    int32_t rowsum = 0;
    for (int64_t i = 0; i < k; ++i) rowsum += a_byte(p, m, i);
    for (int64_t n = nb0 * kNB; n < n1; ++n) {
      const int8_t* blk = p.b.data + (n / kNB) * kp * kNB;
      const int64_t j = n % kNB;
      int64_t acc = 0;
      for (int64_t i = 0; i < k; ++i) acc += a_byte(p, m, i) * blk[((i >> 2) * kNB + j) * 4 + (i & 3)];
      store_scalar(p, m, n, static_cast<int32_t>(static_cast<uint32_t>(acc)), rowsum);
    }
  }
}

}  // namespace fakequant
