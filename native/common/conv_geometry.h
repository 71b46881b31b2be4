#pragma once
// A convolution read as a linear operator (binding.d.ts's ConvOperator; lib/conv/geometry.ts checks and builds it):
// PyTorch's Conv2d(cin, cout, (kh, kw), stride, padding, padding_mode, bias=False) on an input [1, cin, h, w]. The
// input x is [cin][h][w] and the output y is [cout][oh][ow], both row-major; the kernel is in `layout`.
#include <cstddef>

namespace sn {

enum class KernelLayout : int { kOihw = 0, kHwio = 1 };

struct ConvGeometry {
  size_t cout = 1, cin = 1, kh = 1, kw = 1;
  size_t h = 1, w = 1, oh = 1, ow = 1;
  size_t sh = 1, sw = 1, ph = 0, pw = 0;
  bool circular = false;
  KernelLayout layout = KernelLayout::kOihw;

  size_t kernel_size() const { return cout * cin * kh * kw; }
  size_t input_size() const { return cin * h * w; }
  size_t output_size() const { return cout * oh * ow; }
  // Multiply-adds of one application (or of its transpose).
  size_t work() const { return kernel_size() * oh * ow; }

  // Where K[o][c][a][b] lives in the weight array.
  size_t kernel_index(size_t o, size_t c, size_t a, size_t b) const {
    return layout == KernelLayout::kOihw ? ((o * cin + c) * kh + a) * kw + b : ((a * kw + b) * cin + c) * cout + o;
  }

  // PyTorch's output length in one dimension; 0 when the input (padded) is shorter than the kernel.
  static size_t output_length(size_t input, size_t kernel, size_t stride, size_t padding) {
    return input + 2 * padding < kernel ? 0 : (input + 2 * padding - kernel) / stride + 1;
  }

  // The checks lib/conv/geometry.ts makes, again: true when every field is consistent.
  bool valid() const {
    if (cout == 0 || cin == 0 || kh == 0 || kw == 0 || h == 0 || w == 0 || sh == 0 || sw == 0) return false;
    if (ph >= kh || pw >= kw) return false;
    if (circular && (ph > h || pw > w)) return false;
    return oh >= 1 && ow >= 1 && oh == output_length(h, kh, sh, ph) && ow == output_length(w, kw, sw, pw);
  }
};

// The block-circulant that bounds a convolution, per dimension (binding.d.ts's ConvSpectrumJob): the input split into
// `phases` polyphase components, kernel tap a reading component tap_phase[a] at offset tap_offset[a], on a circular
// grid of `grid` points.
struct CirculantAxis {
  size_t grid = 1;
  size_t phases = 1;
  const int* taps = nullptr;  // kernel-length (phase, offset) pairs
};

}  // namespace sn
