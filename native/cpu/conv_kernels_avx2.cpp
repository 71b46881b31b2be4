// The convolution and spectrum kernels compiled for avx2; CMakeLists.txt sets this file's instruction-set flags.
#include "conv_kernels_impl.h"
#include "conv_kernels_isa.h"

namespace sn::conv_kernels::avx2 {
const Table table = make_conv_table();
}  // namespace sn::conv_kernels::avx2
