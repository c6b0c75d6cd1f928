// qconvert_ref.cpp — scalar reference quantize / dequantize kernels.
#include "qconvert.h"

namespace fakequant {

void quantize_ref(const QConvertParams& p, int64_t begin, int64_t end) {
  for_each_row(p.it, begin, end, [&](int64_t, const int64_t* idx, int64_t in_off, int64_t out_off, int64_t n) {
    quantize_row_scalar(p, idx, in_off, out_off, n);
  });
}

void dequantize_ref(const QConvertParams& p, int64_t begin, int64_t end) {
  for_each_row(p.it, begin, end, [&](int64_t, const int64_t* idx, int64_t in_off, int64_t out_off, int64_t n) {
    dequantize_row_scalar(p, idx, in_off, out_off, n);
  });
}

}  // namespace fakequant
