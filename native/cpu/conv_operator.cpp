#include "conv_operator.h"

#include <algorithm>

#include "thread_pool.h"

namespace sn {
namespace {

using conv_kernels::kPanel;

// A chunk's columns: enough panels to amortise its thread-pool rounds, few enough to stay in the second-level cache.
constexpr size_t kChunkDoubles = size_t(1) << 17;

// Each thread's workspace, kept between calls and grown to the largest operator it has run.
struct Workspace {
  ScratchVector<double> doubles;
  bool in_use = false;
};
thread_local Workspace workspace;

// Where padded position `at` (in [0, n + 2p)) reads the input: an index in [0, n), or n (none: a zero).
size_t source(size_t at, size_t n, size_t p, bool circular) {
  const std::ptrdiff_t i = static_cast<std::ptrdiff_t>(at) - static_cast<std::ptrdiff_t>(p);
  const std::ptrdiff_t len = static_cast<std::ptrdiff_t>(n);
  if (circular) return static_cast<size_t>(((i % len) + len) % len);
  return i >= 0 && i < len ? static_cast<size_t>(i) : n;
}

// A's column of kernel tap (c, a, b): the reshaped matrix's column order in each layout.
size_t depth_index(const ConvGeometry& g, size_t c, size_t a, size_t b) {
  return g.layout == KernelLayout::kOihw ? (c * g.kh + a) * g.kw + b : (a * g.kw + b) * g.cin + c;
}

// for_each_read's index for a read of the padding: none.
constexpr size_t kNone = ~size_t(0);

// Entry e of panel q of a chunk whose panels are `rows` × kPanel.
inline size_t panel_entry(size_t q, size_t row, size_t rows, size_t e) { return (q * rows + row) * kPanel + e; }

}  // namespace

ConvOperator::ConvOperator(const float* weight, const ConvGeometry& g) : g_(g), weight_f32_(weight) { plan(); }
ConvOperator::ConvOperator(const double* weight, const ConvGeometry& g) : g_(g), weight_f64_(weight) { plan(); }

ConvOperator::~ConvOperator() {
  if (borrowed_) workspace.in_use = false;
}

void ConvOperator::plan() {
  const ConvGeometry& g = g_;
  depth_ = g.cin * g.kh * g.kw;
  panels_ = (g.oh * g.ow + kPanel - 1) / kPanel;
  chunk_ = std::clamp<size_t>(kChunkDoubles / ((depth_ + g.cout) * kPanel), 1, panels_);
  // Index tables as doubles' worth of size_t, then the two chunk buffers: one allocation at most.
  static_assert(sizeof(size_t) == sizeof(double), "the index tables share the doubles' buffer");
  const size_t tables = g.kh * g.oh + g.kw * g.ow;
  const size_t need = tables + chunk_ * (depth_ + g.cout) * kPanel;
  borrowed_ = !workspace.in_use;
  scratch_ = borrowed_ ? &workspace.doubles : &owned_;
  if (scratch_->size() < need) {
    scratch_->clear();
    scratch_->shrink_to_fit();
    scratch_->resize(need);
  }
  if (borrowed_) workspace.in_use = true;
  auto* rows = reinterpret_cast<size_t*>(scratch_->data());
  auto* cols = rows + g.kh * g.oh;
  for (size_t a = 0; a < g.kh; ++a)
    for (size_t i = 0; i < g.oh; ++i) rows[a * g.oh + i] = source(i * g.sh + a, g.h, g.ph, g.circular);
  for (size_t b = 0; b < g.kw; ++b)
    for (size_t j = 0; j < g.ow; ++j) cols[b * g.ow + j] = source(j * g.sw + b, g.w, g.pw, g.circular);
  source_row_ = rows;
  source_col_ = cols;
  columns_ = scratch_->data() + tables;
  outputs_ = columns_ + chunk_ * depth_ * kPanel;
}

template <typename Done>
void ConvOperator::product(bool transposed, size_t panels, unsigned threads, const Done& done) {
  const conv_kernels::Table& k = conv_kernels::table();
  const ConvGeometry& g = g_;
  // A is cout × depth, read in place: its (row, column) strides are those of the weight's layout.
  const bool oihw = g.layout == KernelLayout::kOihw;
  const auto along_out = static_cast<std::ptrdiff_t>(oihw ? depth_ : 1);
  const auto along_depth = static_cast<std::ptrdiff_t>(oihw ? 1 : g.cout);
  const size_t m = transposed ? depth_ : g.cout;
  const size_t depth = transposed ? g.cout : depth_;
  const std::ptrdiff_t a_row = transposed ? along_depth : along_out, a_col = transposed ? along_out : along_depth;
  const double* b = transposed ? outputs_ : columns_;
  double* c = transposed ? columns_ : outputs_;
  const size_t blocks = (m + k.product_rows - 1) / k.product_rows;
  parallel_ranges(blocks, threads, [&](size_t, size_t b0, size_t b1) {
    const size_t r0 = b0 * k.product_rows, r1 = std::min(m, b1 * k.product_rows);
    if (weight_f32_) {
      k.panel_product_f32({weight_f32_, a_row, a_col, m, depth, b, panels, c, r0, r1});
    } else {
      k.panel_product_f64({weight_f64_, a_row, a_col, m, depth, b, panels, c, r0, r1});
    }
    done(r0, r1);
  });
}

template <typename Visit>
void ConvOperator::for_each_read(size_t c, size_t p0, size_t p1, size_t p_end, const Visit& visit) const {
  const ConvGeometry& g = g_;
  for (size_t a = 0; a < g.kh; ++a) {
    for (size_t b = 0; b < g.kw; ++b) {
      const size_t l = depth_index(g, c, a, b);
      const size_t* rows = source_row_ + a * g.oh;
      const size_t* cols = source_col_ + b * g.ow;
      size_t i = p0 / g.ow, j = p0 % g.ow;
      for (size_t p = p0; p < p_end; ++p) {
        size_t at = kNone;
        if (p < p1) {
          const size_t r = rows[i], s = cols[j];
          if (r != g.h && s != g.w) at = r * g.w + s;
          if (++j == g.ow) j = 0, ++i;
        }
        visit(l, p, at);
      }
    }
  }
}

void ConvOperator::forward(const double* x, double* y, unsigned threads) {
  const ConvGeometry& g = g_;
  const size_t positions = g.oh * g.ow;
  for (size_t p0 = 0; p0 < positions; p0 += chunk_ * kPanel) {
    const size_t p1 = std::min(positions, p0 + chunk_ * kPanel);
    const size_t panels = (p1 - p0 + kPanel - 1) / kPanel;
    // im2col of the chunk's positions, split by input channel; positions past the last are zeros.
    parallel_ranges(g.cin, threads, [&](size_t, size_t c0, size_t c1) {
      for (size_t c = c0; c < c1; ++c) {
        const double* plane = x + c * g.h * g.w;
        for_each_read(c, p0, p1, p0 + panels * kPanel, [&](size_t l, size_t p, size_t at) {
          columns_[panel_entry((p - p0) / kPanel, l, depth_, p % kPanel)] = at == kNone ? 0.0 : plane[at];
        });
      }
    });
    product(false, panels, threads, [&](size_t o0, size_t o1) {
      for (size_t o = o0; o < o1; ++o) {
        for (size_t q = 0; q < panels; ++q) {
          const double* src = outputs_ + panel_entry(q, o, g.cout, 0);
          std::copy(src, src + std::min(kPanel, p1 - p0 - q * kPanel), y + o * positions + p0 + q * kPanel);
        }
      }
    });
  }
}

void ConvOperator::transpose(const double* y, double* t, unsigned threads) {
  const ConvGeometry& g = g_;
  const size_t positions = g.oh * g.ow;
  std::fill(t, t + g.input_size(), 0.0);
  for (size_t p0 = 0; p0 < positions; p0 += chunk_ * kPanel) {
    const size_t p1 = std::min(positions, p0 + chunk_ * kPanel);
    const size_t panels = (p1 - p0 + kPanel - 1) / kPanel;
    // The chunk of y into panels, zeros past the last position.
    parallel_ranges(g.cout, threads, [&](size_t, size_t o0, size_t o1) {
      for (size_t o = o0; o < o1; ++o) {
        for (size_t q = 0; q < panels; ++q) {
          double* dst = outputs_ + panel_entry(q, o, g.cout, 0);
          const size_t run = std::min(kPanel, p1 - p0 - q * kPanel);
          const double* src = y + o * positions + p0 + q * kPanel;
          std::copy(src, src + run, dst);
          std::fill(dst + run, dst + kPanel, 0.0);
        }
      }
    });
    product(true, panels, threads, [](size_t, size_t) {});
    // col2im: each input channel's plane adds its taps, in the same order on any thread count.
    parallel_ranges(g.cin, threads, [&](size_t, size_t c0, size_t c1) {
      for (size_t c = c0; c < c1; ++c) {
        double* plane = t + c * g.h * g.w;
        for_each_read(c, p0, p1, p1, [&](size_t l, size_t p, size_t at) {
          if (at != kNone) plane[at] += columns_[panel_entry((p - p0) / kPanel, l, depth_, p % kPanel)];
        });
      }
    });
  }
}

}  // namespace sn
