// The convolution and spectrum kernels compiled for avx512; CMakeLists.txt sets this file's instruction-set flags.
#include "conv_kernels_impl.h"
#include "conv_kernels_isa.h"

namespace sn::conv_kernels::avx512 {
const Table table = make_conv_table();
}  // namespace sn::conv_kernels::avx512
