// qelementwise_ref.cpp — scalar reference for the uint8 elementwise ops.
#include "qelementwise.h"

namespace fakequant {

void qelementwise_ref(const QElementwiseParams& p, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) p.y[i] = qelementwise_element(p, i);
}

}  // namespace fakequant
