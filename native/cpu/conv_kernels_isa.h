#pragma once
// The per-instruction-set convolution kernel tables, for conv_kernels.cpp's dispatch only.
#include "conv_kernels.h"

namespace sn::conv_kernels {
namespace avx512 {
extern const Table table;
}  // namespace avx512
namespace avx2 {
extern const Table table;
}  // namespace avx2
namespace baseline {
extern const Table table;
}  // namespace baseline
}  // namespace sn::conv_kernels
