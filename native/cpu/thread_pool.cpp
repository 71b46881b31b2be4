#include "thread_pool.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <new>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <sched.h>
#endif

#include "scratch_allocator.h"

namespace sn {
namespace {

// How long a thread that ran out of work polls before it sleeps. A job runs one parallel_for per power iteration and
// one for the division, back to back: a worker that is still polling picks up the next at once, where waking a
// sleeping one costs tens of microseconds on a VM. Only while at most one job is running: with several (a server's
// concurrent async calls) every core is busy anyway, and polling would take CPU from them and the event loop.
constexpr auto kSpin = std::chrono::microseconds(100);

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// Polls ready() until it holds or kSpin has passed; true if it holds.
template <typename Ready>
bool spin_until(const Ready& ready) {
  const auto deadline = std::chrono::steady_clock::now() + kSpin;
  for (unsigned i = 0;; ++i) {
    if (ready()) return true;
    cpu_relax();
    if ((i & 63) == 63 && std::chrono::steady_clock::now() > deadline) return ready();
  }
}

// One parallel_for call. Shared with the workers, so it outlives the caller's stack if a worker is late.
struct Batch {
  const std::function<void(size_t)>* task;
  size_t count;
  std::atomic<size_t> next{0};
  std::atomic<size_t> done{0};
  std::mutex mutex;
  std::condition_variable finished;
  std::exception_ptr error;

  // Claims and runs tasks until none are left.
  void drain() {
    for (size_t i; (i = next.fetch_add(1)) < count;) {
      try {
        (*task)(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex);
        if (!error) error = std::current_exception();
      }
      if (done.fetch_add(1) + 1 == count) {
        std::lock_guard<std::mutex> lock(mutex);
        finished.notify_all();
      }
    }
  }
};

class Pool {
 public:
  void run(size_t count, unsigned threads, const std::function<void(size_t)>& task) {
    struct Active {
      std::atomic<unsigned>& n;
      explicit Active(std::atomic<unsigned>& counter) : n(counter) { n.fetch_add(1); }
      ~Active() { n.fetch_sub(1); }
    } active(running_);
    std::shared_ptr<Batch> batch;
    try {
      scratch_allocation_point();
      batch = std::make_shared<Batch>();
    } catch (const std::bad_alloc&) {
      // No memory to share the work: the caller runs it all, so a job never fails half-way through its commit.
      for (size_t i = 0; i < count; ++i) task(i);
      return;
    }
    batch->task = &task;
    batch->count = count;
    size_t helpers = std::min<size_t>(count, threads) - 1;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      try {
        while (workers_.size() < helpers) workers_.emplace_back([this] { work(); });
      } catch (...) {
        // No more threads to be had: go on with those we have (the caller alone, at worst), rather than fail a
        // job half-way through its commit.
        helpers = workers_.size();
      }
      try {
        for (size_t i = 0; i < helpers; ++i) queue_.push_back(batch);
      } catch (...) {
        // Those already queued still help; the caller drains the rest below, so no task is lost.
      }
      queued_.store(queue_.size(), std::memory_order_relaxed);
    }
    wake_.notify_all();
    batch->drain();
    if (!(alone() && spin_until([&] { return batch->done.load() == count; }))) {
      std::unique_lock<std::mutex> lock(batch->mutex);
      batch->finished.wait(lock, [&] { return batch->done.load() == count; });
    }
    if (batch->error) std::rethrow_exception(batch->error);
  }

 private:
  void work() {
    for (;;) {
      std::shared_ptr<Batch> batch;
      {
        if (alone()) spin_until([&] { return queued_.load(std::memory_order_relaxed) > 0; });
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return !queue_.empty(); });
        batch = std::move(queue_.front());
        queue_.pop_front();
        queued_.store(queue_.size(), std::memory_order_relaxed);
      }
      batch->drain();
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<Batch>> queue_;
  std::atomic<size_t> queued_{0};     // queue_.size(), for polling without the lock
  std::atomic<unsigned> running_{0};  // run() calls in progress

  bool alone() const { return running_.load(std::memory_order_relaxed) <= 1; }
  std::vector<std::thread> workers_;
};

Pool& pool() {
  // Never destroyed: its threads block on a condition variable and end with the process, which avoids joining them
  // from a static destructor while an addon instance in another thread may still be running work.
  static Pool* instance = new Pool();
  return *instance;
}

}  // namespace

void parallel_for(size_t count, unsigned threads, const std::function<void(size_t)>& task) {
  if (count == 0) return;
  if (threads <= 1 || count == 1) {
    for (size_t i = 0; i < count; ++i) task(i);
    return;
  }
  pool().run(count, threads, task);
}

unsigned available_threads() {
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return static_cast<unsigned>(n);
  }
#endif
  const unsigned n = std::thread::hardware_concurrency();
  return n > 0 ? n : 1;
}

}  // namespace sn
