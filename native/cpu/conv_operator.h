#pragma once
// A convolution and its transpose on one image, summed in float64 whatever the weight's type: the operator of a conv
// layer's power iteration ("real SN", power_iteration.cpp) and of convApply. Knows nothing of Node.
//
// Both run as direct convolutions over channels-last, padded copies of their input, with the SIMD block kernel of
// conv_kernels.h vectorised over output channels. The transpose is split by output phase (position mod stride):
// each phase is a stride-1 correlation of the padded input with the kernel taps of that phase, flipped.
#include <cstddef>
#include <vector>

#include "../common/conv_geometry.h"
#include "conv_kernels.h"
#include "scratch_allocator.h"

namespace sn {

class ConvOperator {
 public:
  // Rearranges the kernel and allocates every buffer now: forward() and transpose() allocate nothing. Throws
  // std::bad_alloc through the scratch allocator.
  template <typename T>
  ConvOperator(const T* weight, const ConvGeometry& g);

  // y (cout·oh·ow) = conv2d(x (cin·h·w)), on up to `threads` threads.
  void forward(const double* x, double* y, unsigned threads);
  // t (cin·h·w) = conv2dᵀ(y (cout·oh·ow)), the adjoint.
  void transpose(const double* y, double* t, unsigned threads);

  const ConvGeometry& geometry() const { return g_; }

 private:
  struct Phase {
    size_t row, col;            // the output phase: positions ≡ (row, col) modulo the stride
    size_t tap_begin, tap_end;  // its taps in transpose_taps_
  };

  ConvGeometry g_;
  size_t out_pad_ = 8;  // cout rounded up to 8: the forward's vector dimension
  size_t in_pad_ = 8;   // cin rounded up to 8: the transpose's
  // Forward: the input padded by (ph, pw) on every side, channels-last; the output channels-last.
  size_t xp_rows_ = 0, xp_cols_ = 0;
  ScratchVector<double> forward_weights_;  // [a][b][c][out_pad]
  ScratchVector<conv_kernels::Tap> forward_taps_;
  ScratchVector<double> xp_, yc_;
  // Transpose: y with `top`/`left` zero rows/columns before it, channels-last; the result over every padded input
  // position, channels-last, folded back at the end (cropped, or wrapped around for circular padding).
  size_t top_ = 0, left_ = 0, yp_rows_ = 0, yp_cols_ = 0;
  size_t tp_rows_ = 0, tp_cols_ = 0;
  ScratchVector<double> transpose_weights_;  // [a][b][o][in_pad]
  ScratchVector<conv_kernels::Tap> transpose_taps_;
  ScratchVector<Phase> phases_;
  ScratchVector<double> yp_, tp_;
};

extern template ConvOperator::ConvOperator(const float*, const ConvGeometry&);
extern template ConvOperator::ConvOperator(const double*, const ConvGeometry&);

}  // namespace sn
