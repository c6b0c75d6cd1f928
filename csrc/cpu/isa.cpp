// isa.cpp — cpuid/xgetbv probing and the FAKEQUANT_ISA environment cap.
#include "isa.h"

#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

namespace fakequant {
namespace {

uint64_t xgetbv0() {
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}

// Linux refuses AMX tile data until the process asks for it (arch_prctl ARCH_REQ_XCOMP_PERM).
bool request_amx_permission() {
  constexpr long kArchReqXcompPerm = 0x1023;
  constexpr long kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
}

Isa probe() {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return Isa::Scalar;
  const bool osxsave = c & (1u << 27), fma = c & (1u << 12), f16c = c & (1u << 29);
  if (!osxsave) return Isa::Scalar;
  const uint64_t xcr0 = xgetbv0();
  const bool os_avx = (xcr0 & 0x6) == 0x6;             // XMM + YMM state
  const bool os_avx512 = (xcr0 & 0xe6) == 0xe6;        // + opmask, ZMM_Hi256, Hi16_ZMM
  const bool os_amx = (xcr0 & 0x60000) == 0x60000;     // XTILECFG + XTILEDATA
  if (__get_cpuid_max(0, nullptr) < 7) return Isa::Scalar;
  __cpuid_count(7, 0, a, b, c, d);
  const bool avx2 = b & (1u << 5);
  const bool avx512f = b & (1u << 16), avx512bw = b & (1u << 30), avx512vl = b & (1u << 31);
  const bool vnni = c & (1u << 11);
  const bool amx_tile = d & (1u << 24), amx_int8 = d & (1u << 25);
  if (!(os_avx && avx2 && fma && f16c)) return Isa::Scalar;
  if (!(os_avx512 && avx512f && avx512bw && avx512vl && vnni)) return Isa::Avx2;
  if (!(os_amx && amx_tile && amx_int8 && request_amx_permission())) return Isa::Avx512;
  return Isa::Amx;
}

Isa parse_cap(const char* s) {
  const std::string v(s);
  if (v.empty()) return Isa::Amx;
  if (v == "scalar") return Isa::Scalar;
  if (v == "avx2") return Isa::Avx2;
  if (v == "avx512") return Isa::Avx512;
  if (v == "amx") return Isa::Amx;
  throw std::invalid_argument("FAKEQUANT_ISA must be one of scalar, avx2, avx512, amx; got '" + v + "'");
}

}  // namespace

Isa detected_isa() {
  static const Isa isa = probe();
  return isa;
}

Isa active_isa() {
  const char* env = std::getenv("FAKEQUANT_ISA");
  const Isa hw = detected_isa();
  if (env == nullptr) return hw;
  const Isa cap = parse_cap(env);
  return static_cast<int>(cap) < static_cast<int>(hw) ? cap : hw;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Scalar: return "scalar";
    case Isa::Avx2: return "avx2";
    case Isa::Avx512: return "avx512";
    case Isa::Amx: return "amx";
  }
  return "?";
}

}  // namespace fakequant
