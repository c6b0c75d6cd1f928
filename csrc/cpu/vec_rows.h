// vec_rows.h — dtype / flag tags and scalar-tail indexing shared by the per-ISA entry points of the
// fake-quant, LSQ and min / max kernels (torch-free, no intrinsics: the reference files include it).
#pragma once

#include <cstdint>
#include <type_traits>

#include "../params.h"
#include "strided.h"

namespace fakequant {

static inline int64_t elem_size(DType t) { return t == DType::F64 ? 8 : t == DType::F32 ? 4 : 2; }

template <DType T>
using DTypeTag = std::integral_constant<DType, T>;
template <bool B>
using BoolTag = std::integral_constant<bool, B>;

template <class F>
static inline void with_bool(bool b, F&& f) {
  if (b) {
    f(BoolTag<true>{});
  } else {
    f(BoolTag<false>{});
  }
}

// Calls vec(dtype_tag) for the dtypes the vector kernels take (fp32, fp16, bf16); false otherwise.
template <class F>
static inline bool with_vector_dtype(DType t, F&& vec) {
  switch (t) {
    case DType::F32: vec(DTypeTag<DType::F32>{}); return true;
    case DType::F16: vec(DTypeTag<DType::F16>{}); return true;
    case DType::BF16: vec(DTypeTag<DType::BF16>{}); return true;
    default: return false;
  }
}

// Calls tail(tail_idx): idx (ndim dims) moved `done` elements along the innermost dim, where a
// vector row's scalar tail starts.
template <class Tail>
static inline void with_tail_index(const int64_t* idx, int ndim, int64_t done, Tail&& tail) {
  int64_t tail_idx[kMaxDims];
  for (int d = 0; d < ndim; ++d) tail_idx[d] = idx[d];
  tail_idx[ndim - 1] += done;
  tail(static_cast<const int64_t*>(tail_idx));
}

// Walks the elements [begin, end) of `it` for the vector dtypes: vec(dtype_tag, idx, off, n) does the
// vectors of each unit-stride row (rows of another stride go to scalar whole) and returns how many
// elements it did; scalar(tail_idx, off, n) does the rest. False, doing nothing, for other dtypes.
template <class Vec, class Scalar>
static inline bool for_each_vector_row(const Strided& it, DType dtype, int64_t begin, int64_t end, Vec&& vec,
                                       Scalar&& scalar) {
  const int64_t st = it.in_stride[it.ndim - 1];
  return with_vector_dtype(dtype, [&](auto t) {
    for_each_row(it, begin, end, [&](int64_t, const int64_t* idx, int64_t off, int64_t, int64_t n) {
      const int64_t done = st != 1 ? 0 : vec(t, idx, off, n);
      if (done == n) return;
      with_tail_index(idx, it.ndim, done, [&](const int64_t* tail_idx) { scalar(tail_idx, off + done * st, n - done); });
    });
  });
}

}  // namespace fakequant
