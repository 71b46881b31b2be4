#pragma once
// A process-wide pool of worker threads for the CPU backend. Several callers (async jobs on libuv's pool, worker
// threads) may use it at once: each call waits only for its own tasks.
#include <algorithm>
#include <cstddef>
#include <functional>

namespace sn {

// Runs task(0) … task(count - 1) on at most `threads` threads, the caller included, and returns when all are done.
// Tasks must not call parallel_for themselves. The first exception a task throws is rethrown here once every task
// has finished.
void parallel_for(size_t count, unsigned threads, const std::function<void(size_t)>& task);

// The tasks parallel_ranges splits [0, n) into: at most `threads`, at least 1.
inline size_t range_tasks(size_t n, unsigned threads) { return std::max<size_t>(1, std::min<size_t>(threads, n)); }

// Runs body(task, begin, end) over [0, n) split into range_tasks(n, threads) contiguous ranges, one task each
// (parallel_for's rules apply). A single range runs on the caller, without the pool.
template <typename Body>
void parallel_ranges(size_t n, unsigned threads, const Body& body) {
  const size_t tasks = range_tasks(n, threads);
  if (tasks == 1) {
    body(size_t(0), size_t(0), n);
    return;
  }
  parallel_for(tasks, static_cast<unsigned>(tasks), [&](size_t t) { body(t, n * t / tasks, n * (t + 1) / tasks); });
}

// Threads this process may run on (its CPU affinity), at least 1.
unsigned available_threads();

}  // namespace sn
