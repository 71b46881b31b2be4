#pragma once
// The SIMD inner loops of the convolution operator (conv_operator.cpp) and of the FFT method's linear algebra
// (conv_spectrum.cpp, hermitian.cpp), in float64. Compiled once per instruction set (conv_kernels_avx512.cpp,
// conv_kernels_avx2.cpp, conv_kernels_baseline.cpp) and picked at run time with the matrix kernels' choice
// (kernels.h's simd_level(), which SN_SIMD caps).
#include <cstddef>

namespace sn::conv_kernels {

// One kernel tap of a convolution block: where it reads, relative to an output's base, and its weights, a
// `channels` × `out_pad` row-major block.
struct Tap {
  std::ptrdiff_t offset;
  const double* weights;
};

// out[j·out_stride + o] = Σ_taps Σ_c in[j·in_stride + tap.offset + c] · tap.weights[c·out_pad + o], for the `count`
// outputs j of a run and every o < out_pad (a multiple of 8). Inputs are channels-last and padded, so every index
// read is in range.
struct BlockArgs {
  const double* in;
  std::ptrdiff_t in_stride;
  size_t channels;
  const Tap* taps;
  size_t tap_count;
  size_t out_pad;
  double* out;
  std::ptrdiff_t out_stride;
  size_t count;
};

struct Table {
  void (*conv_block)(const BlockArgs& args);
  // The rows [i0, i1) of P = A·Aᴴ's lower triangle (j ≤ i), for A n × k row-major; complex when ai is not null
  // (then pi receives the imaginary parts). P is n × n row-major; the upper triangle is not written.
  void (*gram_rows)(const double* ar, const double* ai, size_t n, size_t k, size_t i0, size_t i1, double* pr,
                    double* pi);
  // Σ_l a_l·conj(b_l), or Σ_l a_l·b_l when ai and bi are null (then *im = 0).
  void (*dot)(const double* ar, const double* ai, const double* br, const double* bi, size_t k, double* re, double* im);
};

const Table& table();

}  // namespace sn::conv_kernels
