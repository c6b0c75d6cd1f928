// dispatch.h — pick a kernel for the active ISA (cpuid capped by FAKEQUANT_ISA).
#pragma once

#include <pybind11/pybind11.h>

#include <stdexcept>

#include "cpu/isa.h"

namespace fakequant {

// The active ISA capped at `widest`; an invalid FAKEQUANT_ISA becomes a ValueError.
inline Isa dispatch_isa(Isa widest) {
  try {
    return active_isa_upto(widest);
  } catch (const std::invalid_argument& e) {
    throw pybind11::value_error(e.what());
  }
}

// kernels[i] serves Isa i (scalar, avx2, avx512, ...); the widest one not above the active ISA runs.
template <class K, size_t N>
K pick_kernel(const K (&kernels)[N]) {
  return kernels[static_cast<int>(dispatch_isa(static_cast<Isa>(N - 1)))];
}

}  // namespace fakequant
