// reduce.h — fixed-order block reductions on torch's thread pool (binding side): the block partition
// depends only on the element and channel counts, never on the thread count, so results are reproducible.
#pragma once

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>

#include "cpu/strided.h"

namespace fakequant {

// Blocks of at least kBlock elements and at least one per channel (rounded up to 64), so the
// per-block partial results, one per channel, never outgrow the tensor.
struct BlockPlan {
  int64_t numel, block, count;
  BlockPlan(int64_t n, int64_t channels)
      : numel(n), block(std::max(kBlock, (channels + 63) / 64 * 64)), count((n + block - 1) / block) {}
};

// Runs kernel(b, begin, end) for every block b of the plan, spread over torch's threads.
template <class F>
void for_each_block(const BlockPlan& plan, F&& kernel) {
  at::parallel_for(0, plan.count, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) kernel(b, b * plan.block, std::min((b + 1) * plan.block, plan.numel));
  });
}

}  // namespace fakequant
