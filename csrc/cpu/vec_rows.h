// vec_rows.h — dtype / flag tags and scalar-tail indexing shared by the per-ISA entry points of the
// fake-quant, LSQ and min / max kernels (torch-free, no intrinsics: the reference files include it).
#pragma once

#include <cstdint>
#include <type_traits>

#include "../params.h"

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

}  // namespace fakequant
