#include "bandwidth_probe.h"

#include <algorithm>
#include <chrono>
#include <vector>

#include "kernels.h"
#include "thread_pool.h"

namespace sn {

double read_bandwidth(size_t bytes, unsigned threads, unsigned repeats) {
  const size_t n = std::max<size_t>(bytes / sizeof(float), 1024);
  threads = std::max(1u, threads);
  std::vector<float> buffer(n);
  // Touch every page from the threads that will read it, and give the sum something to add.
  parallel_for(threads, threads, [&](size_t t) {
    for (size_t i = n * t / threads; i < n * (t + 1) / threads; ++i) buffer[i] = static_cast<float>(i & 1023);
  });
  const auto& k = kernels::table<float>();
  std::vector<double> partial(threads);
  std::vector<double> rates;
  volatile double sink = 0;
  for (unsigned r = 0; r < std::max(1u, repeats); ++r) {
    const auto start = std::chrono::steady_clock::now();
    parallel_for(threads, threads, [&](size_t t) {
      const size_t begin = n * t / threads, end = n * (t + 1) / threads;
      partial[t] = k.sum_squares(buffer.data() + begin, end - begin);
    });
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    for (double p : partial) sink = sink + p;
    rates.push_back(static_cast<double>(n * sizeof(float)) / seconds);
  }
  std::sort(rates.begin(), rates.end());
  return rates[rates.size() / 2];
}

}  // namespace sn
