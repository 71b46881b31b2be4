#pragma once
// How a weight tensor is read as a matrix, in place, without a permuted copy.
#include <cstddef>

namespace sn {

// PyTorch's weight.permute(dim, *others).flatten(1): with outer = prod(shape[:dim]), rows = shape[dim] and
// inner = prod(shape[dim+1:]), matrix element (r, o*inner + i) lives at weight[(o*rows + r)*inner + i].
struct MatrixLayout {
  size_t outer = 1;
  size_t rows = 1;
  size_t inner = 1;

  size_t cols() const { return outer * inner; }
  size_t size() const { return outer * rows * inner; }
};

}  // namespace sn
