// minmax_ref.cpp — scalar reference min / max kernel: the specification the vector kernels match.
#include "minmax.h"

namespace fakequant {

void minmax_ref(const MinMaxParams& p, int64_t begin, int64_t end, float* mn, float* mx) {
  for_each_row(p.it, begin, end, [&](int64_t, const int64_t* idx, int64_t off, int64_t, int64_t n) {
    minmax_row_scalar(p, idx, off, n, mn, mx);
  });
}

}  // namespace fakequant
