// bind.h — each op family registers its functions on the one pybind11 module.
#pragma once

#include <torch/extension.h>

namespace fakequant {
void bind_fake_quant(pybind11::module_& m);
void bind_lsq(pybind11::module_& m);
void bind_fused_obs(pybind11::module_& m);
void bind_int8(pybind11::module_& m);
#ifdef FAKEQUANT_WITH_CUDA
void bind_cuda(pybind11::module_& m);  // csrc/cuda/bind_cuda.cpp
#endif
}  // namespace fakequant
