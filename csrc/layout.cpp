// layout.cpp — tensors to Strided iteration spaces (see layout.h).
#include "layout.h"

#include <algorithm>

#include "checks.h"
#include "out_cache.h"

namespace fakequant {

std::vector<int64_t> walk_order(const at::Tensor& t, int64_t keep) {
  std::vector<int64_t> order;
  for (int64_t d = 0; d < t.dim(); ++d)
    if (t.size(d) != 1 || d == keep) order.push_back(d);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return t.stride(a) > t.stride(b); });
  return order;
}

Strided make_strided(const std::vector<int64_t>& order, const at::Tensor& in, const at::Tensor& out,
                     int64_t axis, int* ch_dim) {
  Strided s;
  int ch = -1;
  for (int64_t d : order) {
    const int64_t size = in.size(d), is = in.stride(d), os = out.stride(d);
    const int k = s.ndim - 1;
    const bool merge = k >= 0 && d != axis && k != ch && s.in_stride[k] == size * is && s.out_stride[k] == size * os;
    if (merge) {
      s.size[k] *= size;
      s.in_stride[k] = is;
      s.out_stride[k] = os;
      continue;
    }
    if (s.ndim == kMaxDims) value_error("tensors with more than 8 non-mergeable dims are not supported");
    if (d == axis) ch = s.ndim;
    s.size[s.ndim] = size;
    s.in_stride[s.ndim] = is;
    s.out_stride[s.ndim] = os;
    ++s.ndim;
  }
  if (s.ndim == 0) {  // 0-dim or all-ones: one element
    s.ndim = 1;
    s.size[0] = 1;
    s.in_stride[0] = s.out_stride[0] = 1;
  }
  if (ch_dim) *ch_dim = ch;
  return s;
}

FakeQuantOutputs fake_quant_outputs(const at::Tensor& x, int64_t axis, bool need_mask, Strided* it, int* ch_dim,
                                    int mask_planes, bool in_place) {
  FakeQuantOutputs o;
  o.y = in_place ? x : output_like(x);
  o.mask = output_empty({need_mask ? mask_planes * mask_words(x.numel()) : 0}, x.options().dtype(at::kLong));
  o.order = walk_order(x, axis);
  *it = make_strided(o.order, x, o.y, axis, ch_dim);
  return o;
}

}  // namespace fakequant
