// The kernels compiled for avx2; CMakeLists.txt sets this file's instruction-set flags.
#include "kernels_impl.h"
#include "kernels_isa.h"

namespace sn::kernels::avx2 {
constexpr Table<float> f32 = make_table_f32();
constexpr Table<double> f64 = make_table_f64();
}  // namespace sn::kernels::avx2
