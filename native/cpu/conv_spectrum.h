#pragma once
// The FFT method (Sedghi, Gupta & Long, ICLR 2019) on the block-circulant that bounds a convolution: its largest
// singular value, certified, and the input that attains it. The same algorithm as lib/conv/spectrum.ts, whose
// comments give the steps and the error analysis. Knows nothing of Node.
#include <cstddef>

#include "../common/conv_geometry.h"

namespace sn {

struct SpectrumJob {
  const double* kernel = nullptr;  // in geometry.layout
  ConvGeometry geometry;
  CirculantAxis rows, cols;
  unsigned threads = 1;
  double* vector = nullptr;  // written: cin·h·w
};

struct SpectrumResult {
  double upper = 0;     // certified: the circulant's σ_max ≤ upper
  double estimate = 0;  // the circulant's σ_max, resolved to a relative 2^-33
  size_t frequencies = 0;
  size_t refined = 0;
};

// Throws std::range_error for a non-finite kernel, std::bad_alloc when memory cannot be had.
SpectrumResult conv_spectrum(const SpectrumJob& job);

}  // namespace sn
