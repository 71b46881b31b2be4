#include "scratch_allocator.h"

#include <atomic>

namespace sn {
namespace {

// Process-wide, like the thread pool: tests arm it, run one call, and check the outcome.
std::atomic<uint64_t> countdown{0};
std::atomic<uint64_t> made{0};

}  // namespace

void scratch_allocation_point() {
  made.fetch_add(1, std::memory_order_relaxed);
  uint64_t left = countdown.load(std::memory_order_relaxed);
  while (left != 0 && !countdown.compare_exchange_weak(left, left - 1)) {
  }
  if (left == 1) throw std::bad_alloc();
}

void fail_scratch_allocation(uint64_t n) { countdown.store(n); }

uint64_t scratch_allocation_count() { return made.load(); }

}  // namespace sn
