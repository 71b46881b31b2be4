// Half precision widened to float32 with AVX-512F; CMakeLists.txt sets this file's instruction-set flags.
#include <immintrin.h>

#include "half_convert_impl.h"
#include "half_convert_isa.h"

namespace sn::kernels::avx512 {
namespace {

void float16_to_float32(const uint16_t* src, float* dst, size_t n) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i));
    _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(h));
  }
  float16_tail(src + i, dst + i, n - i);
}

void bfloat16_to_float32(const uint16_t* src, float* dst, size_t n) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i));
    _mm512_storeu_si512(dst + i, _mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
  bfloat16_tail(src + i, dst + i, n - i);
}

}  // namespace

const HalfConvert half = {float16_to_float32, bfloat16_to_float32};
}  // namespace sn::kernels::avx512
