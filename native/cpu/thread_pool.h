#pragma once
// A process-wide pool of worker threads for the CPU backend. Several callers (async jobs on libuv's pool, worker
// threads) may use it at once: each call waits only for its own tasks.
#include <cstddef>
#include <functional>

namespace sn {

// Runs task(0) … task(count - 1) on at most `threads` threads, the caller included, and returns when all are done.
// Tasks must not call parallel_for themselves. The first exception a task throws is rethrown here once every task
// has finished.
void parallel_for(size_t count, unsigned threads, const std::function<void(size_t)>& task);

// Threads this process may run on (its CPU affinity), at least 1.
unsigned available_threads();

}  // namespace sn
