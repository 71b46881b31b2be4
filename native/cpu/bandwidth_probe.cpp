#include "bandwidth_probe.h"

#include <algorithm>
#include <chrono>
#include <vector>

#include "kernels.h"
#include "thread_pool.h"

namespace sn {

namespace {

// Each timed repeat reads at least this many bytes (the buffer as many times over as that takes), so that waking the
// threads, which costs microseconds, is no part of the rate of a buffer that fits in cache.
constexpr size_t kBytesPerRepeat = size_t(64) << 20;

}  // namespace

double read_bandwidth(size_t bytes, unsigned threads, unsigned repeats) {
  const size_t n = std::max<size_t>(bytes / sizeof(float), 1024);
  threads = std::max(1u, threads);
  std::vector<float> buffer(n);
  // Touch every page from the threads that will read it, and give the sum something to add.
  parallel_for(threads, threads, [&](size_t t) {
    for (size_t i = n * t / threads; i < n * (t + 1) / threads; ++i) buffer[i] = static_cast<float>(i & 1023);
  });
  const auto& k = kernels::table<float>();
  const size_t passes = std::max<size_t>(1, kBytesPerRepeat / (n * sizeof(float)));
  std::vector<double> partial(threads);
  std::vector<double> rates;
  volatile double sink = 0;
  for (unsigned r = 0; r < std::max(1u, repeats); ++r) {
    const auto start = std::chrono::steady_clock::now();
    parallel_for(threads, threads, [&](size_t t) {
      const size_t begin = n * t / threads, end = n * (t + 1) / threads;
      double s = 0;
      for (size_t p = 0; p < passes; ++p) s += k.read_probe(buffer.data() + begin, end - begin);
      partial[t] = s;
    });
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    for (double p : partial) sink = sink + p;
    rates.push_back(static_cast<double>(passes * n * sizeof(float)) / seconds);
  }
  std::sort(rates.begin(), rates.end());
  return rates[rates.size() / 2];
}

}  // namespace sn
