// isa.h — run-time CPU feature detection (cpuid) and the FAKEQUANT_ISA cap; torch-free.
#pragma once

namespace fakequant {

// Ordered: each level implies the ones below it.
enum class Isa : int { Scalar = 0, Avx2 = 1, Avx512 = 2, Amx = 3 };

// The widest level this CPU and OS support (AVX-512 means F+BW+VL+VNNI; AMX adds tile int8
// and the kernel's permission to use tile data).
Isa detected_isa();

// detected_isa() capped by the environment variable FAKEQUANT_ISA (read on every call, so tests
// can switch paths in one process). Throws std::invalid_argument for an unknown value.
Isa active_isa();

// Same cap, for op families whose widest kernel is below AMX.
static inline Isa active_isa_upto(Isa widest) {
  Isa a = active_isa();
  return static_cast<int>(a) < static_cast<int>(widest) ? a : widest;
}

const char* isa_name(Isa isa);

}  // namespace fakequant
