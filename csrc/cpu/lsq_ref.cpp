// lsq_ref.cpp — scalar reference LSQ backward kernel: the specification the vector kernels match.
#include "lsq.h"

namespace fakequant {

void lsq_grad_ref(const LsqGradParams& p, int64_t begin, int64_t end, double* ds, double* dz) {
  for_each_row(p.it, begin, end, [&](int64_t, const int64_t* idx, int64_t off, int64_t, int64_t n) {
    lsq_grad_row_scalar(p, idx, off, n, ds, dz);
  });
}

}  // namespace fakequant
