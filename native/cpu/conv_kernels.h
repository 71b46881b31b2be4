#pragma once
// The SIMD inner loops of the convolution operator (conv_operator.cpp: one matrix product per direction) and of the
// FFT method's linear algebra (conv_spectrum.cpp, hermitian.cpp), in float64. Compiled once per instruction set
// (conv_kernels_avx512.cpp, conv_kernels_avx2.cpp, conv_kernels_baseline.cpp) and picked at run time with the matrix
// kernels' choice (kernels.h's simd_level(), which SN_SIMD caps).
#include <cstddef>

namespace sn::conv_kernels {

// The columns of a matrix product are grouped in panels of kPanel: a panel of a depth × n matrix is stored as
// depth rows of kPanel consecutive doubles (the last panel padded with zeros), so the product's inner loop reads one
// contiguous stream.
constexpr size_t kPanel = 16;

// C[q] = A · B[q] for the panels q < panels, on the rows [row_begin, row_end) of A and C only. A is m × depth,
// element (i, l) at a[i·a_row + l·a_col] (so a transposed or reordered kernel is read in place); B[q] is depth ×
// kPanel at b + q·depth·kPanel, and C[q] is m × kPanel at c + q·m·kPanel. Every entry is summed over l in order, one
// float64 product at a time, whatever the row range: a split across threads changes no bit.
template <typename T>
struct PanelProduct {
  const T* a;
  std::ptrdiff_t a_row, a_col;
  size_t m, depth;
  const double* b;
  size_t panels;
  double* c;
  size_t row_begin, row_end;
};

struct Table {
  void (*panel_product_f32)(const PanelProduct<float>& p);
  void (*panel_product_f64)(const PanelProduct<double>& p);
  // Rows of A per register tile: a row split that is a multiple of it keeps every tile full.
  size_t product_rows;
  // The rows [i0, i1) of P = A·Aᴴ's lower triangle (j ≤ i), for A n × k row-major; complex when ai is not null
  // (then pi receives the imaginary parts). P is n × n row-major; the upper triangle is not written.
  void (*gram_rows)(const double* ar, const double* ai, size_t n, size_t k, size_t i0, size_t i1, double* pr,
                    double* pi);
  // Σ_l a_l·conj(b_l), or Σ_l a_l·b_l when ai and bi are null (then *im = 0).
  void (*dot)(const double* ar, const double* ai, const double* br, const double* bi, size_t k, double* re, double* im);
};

const Table& table();

}  // namespace sn::conv_kernels
