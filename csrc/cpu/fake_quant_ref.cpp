// fake_quant_ref.cpp — scalar reference fake-quant kernels: the specification the vector kernels match.
#include "fake_quant.h"

namespace fakequant {

void fake_quant_ref(const FakeQuantParams& p, int64_t begin, int64_t end) {
  BitWriter bw(p.mask, begin), br(p.relu_mask, begin);
  for_each_row(p.it, begin, end, [&](int64_t, const int64_t* idx, int64_t in_off, int64_t out_off,
                                     int64_t n) { fake_quant_row_scalar(p, idx, in_off, out_off, n, bw, br); });
}

void mask_grad_ref(const MaskGradParams& p, int64_t begin, int64_t end) {
  for_each_row(p.it, begin, end, [&](int64_t lin, const int64_t*, int64_t in_off, int64_t out_off,
                                     int64_t n) { mask_grad_row_scalar(p, lin, in_off, out_off, n); });
}

}  // namespace fakequant
