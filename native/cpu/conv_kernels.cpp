// Picks the convolution kernels of the instruction set the matrix kernels chose (kernels.h's simd_level(), which
// honours SN_SIMD), so both families run the same variant.
#include <cstring>

#include "conv_kernels_isa.h"
#include "kernels.h"

namespace sn::conv_kernels {

const Table& table() {
#if defined(SN_X86_KERNELS)
  static const Table& chosen = std::strcmp(kernels::simd_level(), "avx512") == 0 ? avx512::table
                               : std::strcmp(kernels::simd_level(), "avx2") == 0 ? avx2::table
                                                                                 : baseline::table;
  return chosen;
#else
  return baseline::table;
#endif
}

}  // namespace sn::conv_kernels
