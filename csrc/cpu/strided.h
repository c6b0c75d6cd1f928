// strided.h — walk a Strided iteration space row by row, and read/write one-bit-per-element masks.
#pragma once

#include <algorithm>
#include <cstdint>

#include "../params.h"

namespace fakequant {

// Calls row(lin, idx, in_off, out_off, n) for each run of n elements along the innermost dim that
// lies in the element range [begin, end); lin is the first element's number, idx its index.
template <class Row>
static inline void for_each_row(const Strided& it, int64_t begin, int64_t end, Row&& row) {
  const int last = it.ndim - 1;
  int64_t idx[kMaxDims];
  int64_t rem = begin;
  for (int d = last; d >= 0; --d) {
    idx[d] = rem % it.size[d];
    rem /= it.size[d];
  }
  for (int64_t lin = begin; lin < end;) {
    const int64_t n = std::min(it.size[last] - idx[last], end - lin);
    int64_t in_off = 0, out_off = 0;
    for (int d = 0; d <= last; ++d) {
      in_off += idx[d] * it.in_stride[d];
      out_off += idx[d] * it.out_stride[d];
    }
    row(lin, static_cast<const int64_t*>(idx), in_off, out_off, n);
    lin += n;
    idx[last] += n;
    for (int d = last; d > 0 && idx[d] == it.size[d]; --d) {
      idx[d] = 0;
      ++idx[d - 1];
    }
  }
}

namespace {  // internal linkage, like the static helpers of every kernel header (see quantize.h)

// Appends bits to a mask, starting at a 64-bit word boundary (ranges given to one thread start
// at multiples of 64 elements, so no two threads share a word).
class BitWriter {
 public:
  BitWriter(uint64_t* words, int64_t first_bit) : w_(words ? words + first_bit / 64 : nullptr) {}
  ~BitWriter() {
    if (w_ && fill_) *w_ = acc_;
  }
  bool active() const { return w_ != nullptr; }
  void put(uint64_t bits, int n) {  // n in 1..64; bits above n must be zero
    acc_ |= bits << fill_;
    const int total = fill_ + n;
    if (total < 64) {
      fill_ = total;
      return;
    }
    *w_++ = acc_;
    acc_ = fill_ ? bits >> (64 - fill_) : 0;
    fill_ = total - 64;
  }
  void put_bit(bool b) { put(b ? 1u : 0u, 1); }

 private:
  uint64_t* w_;
  uint64_t acc_ = 0;
  int fill_ = 0;
};

}  // namespace

// n bits (1..64) starting at bit `pos`.
static inline uint64_t read_bits(const uint64_t* words, int64_t pos, int n) {
  const int64_t w = pos >> 6;
  const int o = static_cast<int>(pos & 63);
  uint64_t v = words[w] >> o;
  if (o + n > 64) v |= words[w + 1] << (64 - o);
  return n == 64 ? v : v & ((uint64_t{1} << n) - 1);
}

// Threads take element ranges in blocks of this many elements (a multiple of 64).
constexpr int64_t kBlock = 16384;

}  // namespace fakequant
