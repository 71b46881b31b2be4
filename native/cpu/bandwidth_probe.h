#pragma once
// The machine's streaming read bandwidth, measured with the same SIMD kernels the backend runs: the roofline the
// benchmarks compare against.
#include <cstddef>

namespace sn {

// Reads a buffer of `bytes` (float32) `repeats` times over `threads` threads and returns the median rate in bytes
// per second. Throws std::bad_alloc when the buffer cannot be had.
double read_bandwidth(size_t bytes, unsigned threads, unsigned repeats);

}  // namespace sn
