// Half precision widened to float32 with no instruction-set extension: scalar (GCC vectorizes bfloat16's shift).
#include "half_convert_impl.h"
#include "half_convert_isa.h"

namespace sn::kernels::baseline {
const HalfConvert half = {float16_tail, bfloat16_tail};
}  // namespace sn::kernels::baseline
