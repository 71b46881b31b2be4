#pragma once
// Every scratch allocation of a CPU job goes through here, so a test can make the Nth one fail and check that the
// job then fails cleanly (std::bad_alloc, nothing modified) and the next one works. In production the switch is never
// armed and costs one relaxed atomic load per allocation (a handful per job).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <vector>

namespace sn {

// Throws std::bad_alloc when the armed countdown reaches this allocation; otherwise does nothing.
void scratch_allocation_point();

// Test-only: the `n`th scratch allocation from now (1 = the next) throws std::bad_alloc, once; 0 disarms.
void fail_scratch_allocation(uint64_t n);

// Test-only: scratch allocations made so far by this process, to size a sweep over every allocation of a call.
uint64_t scratch_allocation_count();

template <typename T>
struct ScratchAllocator {
  using value_type = T;
  ScratchAllocator() = default;
  template <typename U>
  ScratchAllocator(const ScratchAllocator<U>&) noexcept {}
  T* allocate(size_t n) {
    scratch_allocation_point();
    return std::allocator<T>().allocate(n);
  }
  void deallocate(T* p, size_t n) noexcept { std::allocator<T>().deallocate(p, n); }
  template <typename U>
  bool operator==(const ScratchAllocator<U>&) const noexcept {
    return true;
  }
  template <typename U>
  bool operator!=(const ScratchAllocator<U>&) const noexcept {
    return false;
  }
};

template <typename T>
using ScratchVector = std::vector<T, ScratchAllocator<T>>;

}  // namespace sn
