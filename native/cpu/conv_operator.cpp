#include "conv_operator.h"

#include <algorithm>

#include "thread_pool.h"

namespace sn {
namespace {

size_t round_up8(size_t n) { return (n + 7) / 8 * 8; }

// Where padded position `at` (in [0, n + 2p)) reads the input: an index in [0, n), or n (none: a zero).
size_t source(size_t at, size_t n, size_t p, bool circular) {
  const std::ptrdiff_t i = static_cast<std::ptrdiff_t>(at) - static_cast<std::ptrdiff_t>(p);
  const std::ptrdiff_t len = static_cast<std::ptrdiff_t>(n);
  if (circular) return static_cast<size_t>(((i % len) + len) % len);
  return i >= 0 && i < len ? static_cast<size_t>(i) : n;
}

}  // namespace

template <typename T>
ConvOperator::ConvOperator(const T* weight, const ConvGeometry& g) : g_(g) {
  out_pad_ = round_up8(g.cout);
  in_pad_ = round_up8(g.cin);
  const size_t taps = g.kh * g.kw;

  // Forward: weights [a][b][c][o], o padded with zeros.
  xp_rows_ = g.h + 2 * g.ph;
  xp_cols_ = g.w + 2 * g.pw;
  forward_weights_.assign(taps * g.cin * out_pad_, 0.0);
  forward_taps_.resize(taps);
  for (size_t a = 0; a < g.kh; ++a) {
    for (size_t b = 0; b < g.kw; ++b) {
      double* block = forward_weights_.data() + (a * g.kw + b) * g.cin * out_pad_;
      for (size_t c = 0; c < g.cin; ++c) {
        for (size_t o = 0; o < g.cout; ++o)
          block[c * out_pad_ + o] = static_cast<double>(weight[g.kernel_index(o, c, a, b)]);
      }
      forward_taps_[a * g.kw + b] = {static_cast<std::ptrdiff_t>((a * xp_cols_ + b) * g.cin), block};
    }
  }
  xp_.assign(xp_rows_ * xp_cols_ * g.cin, 0.0);
  yc_.assign(g.oh * g.ow * out_pad_, 0.0);

  // Transpose: weights [a][b][o][c], c padded; taps grouped by output phase.
  transpose_weights_.assign(taps * g.cout * in_pad_, 0.0);
  for (size_t a = 0; a < g.kh; ++a) {
    for (size_t b = 0; b < g.kw; ++b) {
      double* block = transpose_weights_.data() + (a * g.kw + b) * g.cout * in_pad_;
      for (size_t o = 0; o < g.cout; ++o) {
        for (size_t c = 0; c < g.cin; ++c)
          block[o * in_pad_ + c] = static_cast<double>(weight[g.kernel_index(o, c, a, b)]);
      }
    }
  }
  top_ = (g.kh + g.sh - 1) / g.sh - 1;
  left_ = (g.kw + g.sw - 1) / g.sw - 1;
  tp_rows_ = g.h + 2 * g.ph;
  tp_cols_ = g.w + 2 * g.pw;
  yp_rows_ = top_ + (tp_rows_ - 1) / g.sh + 1;
  yp_cols_ = left_ + (tp_cols_ - 1) / g.sw + 1;
  yp_.assign(yp_rows_ * yp_cols_ * g.cout, 0.0);
  tp_.assign(tp_rows_ * tp_cols_ * in_pad_, 0.0);
  phases_.reserve(g.sh * g.sw);
  transpose_taps_.reserve(taps);
  for (size_t pr = 0; pr < g.sh; ++pr) {
    for (size_t pc = 0; pc < g.sw; ++pc) {
      Phase phase{pr, pc, transpose_taps_.size(), 0};
      // Position R = s·R' + pr gets tap a = pr + s·α from y[R' − α]: at offset −α rows from the output's base.
      for (size_t alpha = 0; pr + g.sh * alpha < g.kh; ++alpha) {
        for (size_t beta = 0; pc + g.sw * beta < g.kw; ++beta) {
          const size_t a = pr + g.sh * alpha, b = pc + g.sw * beta;
          const std::ptrdiff_t offset = -static_cast<std::ptrdiff_t>((alpha * yp_cols_ + beta) * g.cout);
          transpose_taps_.push_back({offset, transpose_weights_.data() + (a * g.kw + b) * g.cout * in_pad_});
        }
      }
      phase.tap_end = transpose_taps_.size();
      phases_.push_back(phase);
    }
  }
}

template ConvOperator::ConvOperator(const float*, const ConvGeometry&);
template ConvOperator::ConvOperator(const double*, const ConvGeometry&);

void ConvOperator::forward(const double* x, double* y, unsigned threads) {
  const ConvGeometry& g = g_;
  const conv_kernels::Table& k = conv_kernels::table();
  // The padded copy: zero rows and columns were written once; circular ones wrap and are refreshed here.
  parallel_ranges(xp_rows_, threads, [&](size_t, size_t r0, size_t r1) {
    for (size_t R = r0; R < r1; ++R) {
      const size_t r = source(R, g.h, g.ph, g.circular);
      if (r == g.h) continue;
      for (size_t Q = 0; Q < xp_cols_; ++Q) {
        const size_t q = source(Q, g.w, g.pw, g.circular);
        if (q == g.w) continue;
        double* dst = xp_.data() + (R * xp_cols_ + Q) * g.cin;
        for (size_t c = 0; c < g.cin; ++c) dst[c] = x[(c * g.h + r) * g.w + q];
      }
    }
  });
  parallel_ranges(g.oh, threads, [&](size_t, size_t i0, size_t i1) {
    for (size_t i = i0; i < i1; ++i) {
      conv_kernels::BlockArgs args{};
      args.in = xp_.data() + g.sh * i * xp_cols_ * g.cin;
      args.in_stride = static_cast<std::ptrdiff_t>(g.sw * g.cin);
      args.channels = g.cin;
      args.taps = forward_taps_.data();
      args.tap_count = forward_taps_.size();
      args.out_pad = out_pad_;
      args.out = yc_.data() + i * g.ow * out_pad_;
      args.out_stride = static_cast<std::ptrdiff_t>(out_pad_);
      args.count = g.ow;
      k.conv_block(args);
      for (size_t o = 0; o < g.cout; ++o) {
        double* row = y + (o * g.oh + i) * g.ow;
        for (size_t j = 0; j < g.ow; ++j) row[j] = yc_[(i * g.ow + j) * out_pad_ + o];
      }
    }
  });
}

void ConvOperator::transpose(const double* y, double* t, unsigned threads) {
  const ConvGeometry& g = g_;
  const conv_kernels::Table& k = conv_kernels::table();
  // y into the interior of its zero-bordered, channels-last copy.
  parallel_ranges(g.oh, threads, [&](size_t, size_t i0, size_t i1) {
    for (size_t i = i0; i < i1; ++i) {
      for (size_t j = 0; j < g.ow; ++j) {
        double* dst = yp_.data() + ((i + top_) * yp_cols_ + j + left_) * g.cout;
        for (size_t o = 0; o < g.cout; ++o) dst[o] = y[(o * g.oh + i) * g.ow + j];
      }
    }
  });
  // Every padded position that reaches the result: the input's own with zeros padding, all of them with circular.
  const size_t r_begin = g.circular ? 0 : g.ph, r_end = g.circular ? tp_rows_ : g.ph + g.h;
  const size_t q_begin = g.circular ? 0 : g.pw, q_end = g.circular ? tp_cols_ : g.pw + g.w;
  parallel_ranges(r_end - r_begin, threads, [&](size_t, size_t t0, size_t t1) {
    for (size_t R = r_begin + t0; R < r_begin + t1; ++R) {
      const size_t pr = R % g.sh, Rp = R / g.sh;
      for (size_t pc = 0; pc < g.sw; ++pc) {
        const Phase& phase = phases_[pr * g.sw + pc];
        // The run of columns Q = s·Q' + pc in [q_begin, q_end).
        const size_t first = q_begin > pc ? (q_begin - pc + g.sw - 1) / g.sw : 0;
        if (q_end <= pc || first > (q_end - 1 - pc) / g.sw) continue;
        const size_t count = (q_end - 1 - pc) / g.sw - first + 1;
        conv_kernels::BlockArgs args{};
        args.in = yp_.data() + ((Rp + top_) * yp_cols_ + first + left_) * g.cout;
        args.in_stride = static_cast<std::ptrdiff_t>(g.cout);
        args.channels = g.cout;
        args.taps = transpose_taps_.data() + phase.tap_begin;
        args.tap_count = phase.tap_end - phase.tap_begin;
        args.out_pad = in_pad_;
        args.out = tp_.data() + (R * tp_cols_ + g.sw * first + pc) * in_pad_;
        args.out_stride = static_cast<std::ptrdiff_t>(g.sw * in_pad_);
        args.count = count;
        k.conv_block(args);
      }
    }
  });
  // Fold the padded positions back onto the input: crop, or add each wrapped position onto the one it repeats.
  if (!g.circular) {
    parallel_ranges(g.h, threads, [&](size_t, size_t r0, size_t r1) {
      for (size_t c = 0; c < g.cin; ++c) {
        for (size_t r = r0; r < r1; ++r) {
          const double* src = tp_.data() + ((r + g.ph) * tp_cols_ + g.pw) * in_pad_ + c;
          double* dst = t + (c * g.h + r) * g.w;
          for (size_t q = 0; q < g.w; ++q) dst[q] = src[q * in_pad_];
        }
      }
    });
    return;
  }
  parallel_ranges(g.cin, threads, [&](size_t, size_t c0, size_t c1) {
    for (size_t c = c0; c < c1; ++c) {
      double* plane = t + c * g.h * g.w;
      std::fill(plane, plane + g.h * g.w, 0.0);
      for (size_t R = 0; R < tp_rows_; ++R) {
        const size_t r = source(R, g.h, g.ph, true);
        for (size_t Q = 0; Q < tp_cols_; ++Q) {
          plane[r * g.w + source(Q, g.w, g.pw, true)] += tp_[(R * tp_cols_ + Q) * in_pad_ + c];
        }
      }
    }
  });
}

}  // namespace sn
