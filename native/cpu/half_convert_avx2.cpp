// Half precision widened to float32 with AVX2 and F16C; CMakeLists.txt sets this file's instruction-set flags.
#include <immintrin.h>

#include "half_convert_impl.h"
#include "half_convert_isa.h"

namespace sn::kernels::avx2 {
namespace {

void float16_to_float32(const uint16_t* src, float* dst, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
  }
  float16_tail(src + i, dst + i, n - i);
}

void bfloat16_to_float32(const uint16_t* src, float* dst, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), _mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
  bfloat16_tail(src + i, dst + i, n - i);
}

}  // namespace

const HalfConvert half = {float16_to_float32, bfloat16_to_float32};
}  // namespace sn::kernels::avx2
