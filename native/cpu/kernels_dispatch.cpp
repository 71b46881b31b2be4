// Picks the kernel variant the running CPU supports, once, on first use: the build machine's CPU does not matter.
#include <cstdlib>
#include <cstring>

#include "half_convert_isa.h"
#include "kernels_isa.h"

#if defined(SN_X86_KERNELS)
#include <cpuid.h>
#endif

namespace sn::kernels {
namespace {

enum class Level { kBaseline, kAvx2, kAvx512 };

Level detect() {
  // SN_SIMD caps the level (for tests and benchmarks of the slower paths); it never raises it.
  const char* cap = std::getenv("SN_SIMD");
  Level best = Level::kBaseline;
#if defined(SN_X86_KERNELS)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) best = Level::kAvx2;
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq")) best = Level::kAvx512;
#endif
  if (cap != nullptr) {
    if (std::strcmp(cap, "sse2") == 0 || std::strcmp(cap, "baseline") == 0) return Level::kBaseline;
    if (std::strcmp(cap, "avx2") == 0 && best == Level::kAvx512) return Level::kAvx2;
  }
  return best;
}

Level level() {
  static const Level chosen = detect();
  return chosen;
}

}  // namespace

const Table<float>& table_f32() {
  switch (level()) {
#if defined(SN_X86_KERNELS)
    case Level::kAvx512: return avx512::f32;
    case Level::kAvx2: return avx2::f32;
#endif
    default: return baseline::f32;
  }
}

const Table<double>& table_f64() {
  switch (level()) {
#if defined(SN_X86_KERNELS)
    case Level::kAvx512: return avx512::f64;
    case Level::kAvx2: return avx2::f64;
#endif
    default: return baseline::f64;
  }
}

const HalfConvert& half_convert() {
  switch (level()) {
#if defined(SN_X86_KERNELS)
    case Level::kAvx512: return avx512::half;
    case Level::kAvx2: {
      // F16C (CPUID.1:ECX bit 29) comes with every AVX2 CPU made, but the AVX2 level does not promise it.
      unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
      static const bool f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C) != 0;
      return f16c ? avx2::half : baseline::half;
    }
#endif
    default: return baseline::half;
  }
}

const char* simd_level() {
  switch (level()) {
    case Level::kAvx512: return "avx512";
    case Level::kAvx2: return "avx2";
    default:
#if defined(__x86_64__)
      return "sse2";
#else
      return "scalar";
#endif
  }
}

}  // namespace sn::kernels
