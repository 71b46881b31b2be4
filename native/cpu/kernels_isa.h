#pragma once
// The per-instruction-set kernel tables, for the run-time dispatcher only.
#include "kernels.h"

namespace sn::kernels {
namespace avx512 {
extern const Table<float> f32;
extern const Table<double> f64;
}  // namespace avx512
namespace avx2 {
extern const Table<float> f32;
extern const Table<double> f64;
}  // namespace avx2
namespace baseline {
extern const Table<float> f32;
extern const Table<double> f64;
}  // namespace baseline
}  // namespace sn::kernels
