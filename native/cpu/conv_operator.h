#pragma once
// A convolution and its transpose on one image, summed in float64 whatever the weight's type: the operator of a conv
// layer's power iteration ("real SN", power_iteration.cpp) and of convApply. Knows nothing of Node.
//
// Both are matrix products with the kernel read in place as the reshaped matrix A (cout × cin·kh·kw, in the
// layout's column order): the forward is y = A·im2col(x), the transpose t = col2im(Aᵀ·y). The output positions go
// through in chunks of panels (conv_kernels.h), each chunk's rows split across threads, so every entry is summed in
// the same order on any thread count.
#include <cstddef>

#include "../common/conv_geometry.h"
#include "conv_kernels.h"
#include "scratch_allocator.h"

namespace sn {

class ConvOperator {
 public:
  // Keeps `weight` (not copied: it must outlive the operator) and takes every buffer now: forward() and transpose()
  // allocate nothing. Throws std::bad_alloc through the scratch allocator.
  ConvOperator(const float* weight, const ConvGeometry& g);
  ConvOperator(const double* weight, const ConvGeometry& g);
  ~ConvOperator();
  ConvOperator(const ConvOperator&) = delete;
  ConvOperator& operator=(const ConvOperator&) = delete;

  // y (cout·oh·ow) = conv2d(x (cin·h·w)), on up to `threads` threads.
  void forward(const double* x, double* y, unsigned threads);
  // t (cin·h·w) = conv2dᵀ(y (cout·oh·ow)), the adjoint.
  void transpose(const double* y, double* t, unsigned threads);

  const ConvGeometry& geometry() const { return g_; }

 private:
  void plan();
  // outputs = A·columns (transposed: columns = Aᵀ·outputs) on the chunk's `panels`, rows split across threads;
  // then done(r0, r1) on each task's rows.
  template <typename Done>
  void product(bool transposed, size_t panels, unsigned threads, const Done& done);
  // visit(l, p, at) for every tap (a, b) of input channel c (A's column l) and every position p in [p0, p_end): the
  // index at = r·w + s in c's plane that the position reads through the tap, or kNone (padding, or p ≥ p1).
  template <typename Visit>
  void for_each_read(size_t c, size_t p0, size_t p1, size_t p_end, const Visit& visit) const;

  ConvGeometry g_;
  const float* weight_f32_ = nullptr;
  const double* weight_f64_ = nullptr;
  size_t depth_ = 0;   // cin·kh·kw: A's columns
  size_t panels_ = 0;  // output positions oh·ow, in panels of kPanel
  size_t chunk_ = 0;   // panels per chunk
  // The scratch: this thread's reusable workspace when it is free (steps of a training loop would otherwise fault
  // fresh pages in every call), else owned_.
  ScratchVector<double>* scratch_ = nullptr;
  ScratchVector<double> owned_;
  bool borrowed_ = false;
  // Where kernel tap a of output row i reads the input's row: an index in [0, h), or h (a zero); likewise columns.
  const size_t* source_row_ = nullptr;  // [a][i]
  const size_t* source_col_ = nullptr;  // [b][j]
  double* columns_ = nullptr;  // a chunk of im2col(x) (forward) or Aᵀ·y (transpose): depth × kPanel a panel
  double* outputs_ = nullptr;  // a chunk of A·im2col(x) (forward) or y (transpose): cout × kPanel a panel
};

}  // namespace sn
