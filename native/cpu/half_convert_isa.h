#pragma once
// The per-instruction-set half-precision conversions, for the run-time dispatcher only.
#include "half_convert.h"

namespace sn::kernels {
namespace avx512 {
extern const HalfConvert half;
}  // namespace avx512
namespace avx2 {
extern const HalfConvert half;
}  // namespace avx2
namespace baseline {
extern const HalfConvert half;
}  // namespace baseline
}  // namespace sn::kernels
