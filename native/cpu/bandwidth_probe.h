#pragma once
// The machine's read bandwidth, the roofline the benchmarks compare against: a loop of loads and adds only
// (kernels.h read_probe), on the widest SIMD the backend uses, so no arithmetic holds it below what the memory (or,
// for a buffer that fits, the cache) delivers.
#include <cstddef>

namespace sn {

// Reads a buffer of `bytes` (float32) over `threads` threads, `repeats` timed times (each at least 64 MiB of reads,
// the buffer over and over if it is smaller), and returns the median rate in bytes per second. Throws std::bad_alloc
// when the buffer cannot be had.
double read_bandwidth(size_t bytes, unsigned threads, unsigned repeats);

}  // namespace sn
