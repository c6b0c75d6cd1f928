// layout.h — turn tensors' sizes and strides into a Strided iteration space (binding side).
#pragma once

#include <torch/extension.h>

#include <vector>

#include "params.h"

namespace fakequant {

// The order in which an op walks `t`'s dims: by stride, largest first (memory order for dense
// tensors, so channels_last and transposed views stream). Size-1 dims are dropped unless `keep`.
std::vector<int64_t> walk_order(const at::Tensor& t, int64_t keep = -1);

// The iteration space over `order` with `in`'s and `out`'s strides; adjacent dims merge where
// both tensors allow it (never the channel dim `axis`). *ch_dim receives axis's position or -1.
Strided make_strided(const std::vector<int64_t>& order, const at::Tensor& in, const at::Tensor& out,
                     int64_t axis = -1, int* ch_dim = nullptr);

// int64 words of a one-bit-per-element mask plane over numel elements.
inline int64_t mask_words(int64_t numel) { return (numel + 63) / 64; }

// A fake-quant forward's outputs over x: y (x's memory format), the mask (one bit per element in
// int64 words; empty unless need_mask) and the walk order, which the backward needs. *it receives
// the iteration space over x and y, *ch_dim the position of `axis` in it (-1 for none).
struct FakeQuantOutputs {
  at::Tensor y, mask;
  std::vector<int64_t> order;
};
// mask_planes: bit planes of numel bits each in `mask` (2 for a fused ReLU's mask: fake quant's, then the ReLU's).
// in_place: y is x itself (a dense intermediate its caller owns), which the elementwise kernels may overwrite.
FakeQuantOutputs fake_quant_outputs(const at::Tensor& x, int64_t axis, bool need_mask, Strided* it, int* ch_dim,
                                    int mask_planes = 1, bool in_place = false);

// Runs kernel(begin, end) over [0, numel) in blocks of kBlock elements on torch's thread pool.
template <class F>
void parallel_blocks(int64_t numel, F&& kernel);

}  // namespace fakequant

#include <ATen/Parallel.h>

#include "cpu/strided.h"

namespace fakequant {
template <class F>
void parallel_blocks(int64_t numel, F&& kernel) {
  const int64_t nblocks = (numel + kBlock - 1) / kBlock;
  if (nblocks <= 1) {
    if (numel > 0) kernel(int64_t{0}, numel);
    return;
  }
  at::parallel_for(0, nblocks, 1, [&](int64_t b0, int64_t b1) {
    kernel(b0 * kBlock, std::min(b1 * kBlock, numel));
  });
}
}  // namespace fakequant
