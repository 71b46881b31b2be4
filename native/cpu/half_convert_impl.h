#pragma once
// The scalar conversions every variant shares (the baseline whole, the SIMD ones for their tails). Included by the
// half_convert_*.cpp files only.
#include <cstdint>
#include <cstring>

#include "half_convert.h"

namespace sn::kernels {
namespace {

inline float bits_to_float(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// IEEE binary16 → binary32 on the bit pattern: rebias the exponent (15 → 127), widen the mantissa (10 → 23 bits),
// normalize subnormals, and keep ±0, ±Inf and NaN (quieted, sign and payload kept, as vcvtph2ps does).
inline float float16_to_float32_scalar(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0x1f) return bits_to_float(sign | 0x7f800000u | (mantissa << 13) | (mantissa != 0 ? 0x400000u : 0));
  if (exponent != 0) return bits_to_float(sign | ((exponent + 112) << 23) | (mantissa << 13));
  if (mantissa == 0) return bits_to_float(sign);
  // Subnormal: value = mantissa · 2^-24; shift its leading 1 into the implicit bit.
  int e = 113;
  while ((mantissa & 0x400u) == 0) {
    mantissa <<= 1;
    --e;
  }
  return bits_to_float(sign | (static_cast<uint32_t>(e) << 23) | ((mantissa & 0x3ffu) << 13));
}

// bfloat16 is the top half of a float32.
inline float bfloat16_to_float32_scalar(uint16_t h) { return bits_to_float(static_cast<uint32_t>(h) << 16); }

inline uint16_t load_u16(const uint16_t* p) {
  uint16_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline void float16_tail(const uint16_t* src, float* dst, size_t n) {
  for (size_t i = 0; i < n; ++i) dst[i] = float16_to_float32_scalar(load_u16(src + i));
}

inline void bfloat16_tail(const uint16_t* src, float* dst, size_t n) {
  for (size_t i = 0; i < n; ++i) dst[i] = bfloat16_to_float32_scalar(load_u16(src + i));
}

}  // namespace
}  // namespace sn::kernels
