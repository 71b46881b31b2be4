#pragma once
// Half-precision storage widened to float32, exactly: IEEE binary16 (float16) and bfloat16, as models store them.
// Compiled once per instruction set (half_convert_avx512.cpp: vcvtph2ps on 16 lanes; half_convert_avx2.cpp: F16C's
// vcvtph2ps on 8; half_convert_baseline.cpp: scalar) and picked at run time like the power-iteration kernels.
//
// Every float16 value is a float32, so the conversion is exact. NaNs keep their sign and payload and come out quiet
// (vcvtph2ps sets the quiet bit of a signalling NaN; the scalar path does the same), so every path gives the same bits.
#include <cstddef>
#include <cstdint>

namespace sn::kernels {

struct HalfConvert {
  // dst[i] = the float32 value of src[i], i in [0, n). src need not be aligned beyond 2 bytes, dst beyond 4.
  void (*float16_to_float32)(const uint16_t* src, float* dst, size_t n);
  void (*bfloat16_to_float32)(const uint16_t* src, float* dst, size_t n);
};

// The variant the running CPU selected (kernels_dispatch.cpp), the same as simd_level() names.
const HalfConvert& half_convert();

}  // namespace sn::kernels
