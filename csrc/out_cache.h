// out_cache.h — CPU outputs of the kernels from a cache that keeps freed blocks mapped, so repeated
// same-size outputs (every training step) skip the page faults and zeroing of fresh memory.
#pragma once

#include <torch/extension.h>

#include <cstdint>

namespace fakequant {

// Outputs of at least this many bytes come from the cache (smaller ones from torch's allocator).
constexpr int64_t kCachedOutputBytes = int64_t{256} << 10;

// An uninitialised tensor with x's sizes, x's strides when x is dense (else contiguous) and `dtype`,
// on x's device; CPU outputs of kCachedOutputBytes or more come from the cache.
at::Tensor output_like(const at::Tensor& x, at::ScalarType dtype);
inline at::Tensor output_like(const at::Tensor& x) { return output_like(x, x.scalar_type()); }

// An uninitialised contiguous tensor of `sizes` like at::empty, cached on the CPU as output_like.
at::Tensor output_empty(at::IntArrayRef sizes, const at::TensorOptions& options);

// Bytes the cache holds for reuse now; release_cached_outputs frees them (tensors alive keep theirs).
int64_t cached_output_bytes();
int64_t release_cached_outputs();

void bind_out_cache(pybind11::module_& m);

}  // namespace fakequant
