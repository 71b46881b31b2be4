// The CPU emulation of the CUDA runtime behind cuda_runtime.h in this folder (SN_CUDA=EMULATE builds only).
#include "cuda_runtime.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <ucontext.h>

namespace {

thread_local cudaError_t last_error = cudaSuccess;

cudaError_t fail(cudaError_t e) {
  last_error = e;
  return e;
}

// Pinned host ranges (cudaHostAlloc), so a copy knows whether it may run asynchronously.
std::mutex pinned_mutex;
std::map<const char*, size_t> pinned_ranges;

bool is_pinned(const void* p, size_t bytes) {
  const char* c = static_cast<const char*>(p);
  std::lock_guard<std::mutex> lock(pinned_mutex);
  auto it = pinned_ranges.upper_bound(c);
  if (it == pinned_ranges.begin()) return false;
  --it;
  return c >= it->first && c + bytes <= it->first + it->second;
}

// SN_EMULATION_DEVICES=N (1 to 16, default 1) emulates N devices, to test spreading work over several GPUs (the
// CLI's --device all). They share the host's memory, so a pointer from one works on all, unlike real devices.
int emulated_devices() {
  static const int count = [] {
    const char* value = std::getenv("SN_EMULATION_DEVICES");
    const int n = value ? std::atoi(value) : 1;
    return n >= 1 && n <= 16 ? n : 1;
  }();
  return count;
}

bool is_device(int device) { return device >= 0 && device < emulated_devices(); }

}  // namespace

// A graph: the work a stream recorded while capturing.
struct EmulatedGraph {
  std::vector<std::function<void()>> ops;
};
struct EmulatedGraphExec {
  std::shared_ptr<const std::vector<std::function<void()>>> ops;
};

// A stream: a thread that runs its queued work in order.
struct EmulatedStream {
  std::mutex mutex;
  std::condition_variable wake, idle;
  std::deque<std::function<void()>> queue;
  bool busy = false;
  bool stop = false;
  EmulatedGraph* capture = nullptr;
  std::thread worker;

  EmulatedStream() : worker([this] { loop(); }) {}
  ~EmulatedStream() {
    {
      std::lock_guard<std::mutex> lock(mutex);
      stop = true;
    }
    wake.notify_all();
    worker.join();
  }

  void loop() {
    for (;;) {
      std::function<void()> op;
      {
        std::unique_lock<std::mutex> lock(mutex);
        wake.wait(lock, [&] { return stop || !queue.empty(); });
        if (queue.empty()) return;  // stopping, and nothing left
        op = std::move(queue.front());
        queue.pop_front();
        busy = true;
      }
      op();
      {
        std::lock_guard<std::mutex> lock(mutex);
        busy = false;
        if (queue.empty()) idle.notify_all();
      }
    }
  }

  // Runs op in order after everything queued before, or records it when capturing.
  void enqueue(std::function<void()> op) {
    if (capture) {
      capture->ops.push_back(std::move(op));
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mutex);
      queue.push_back(std::move(op));
    }
    wake.notify_one();
  }

  void synchronize() {
    std::unique_lock<std::mutex> lock(mutex);
    idle.wait(lock, [&] { return queue.empty() && !busy; });
  }
};

// An event: recorded generations, and the last one a stream reached.
struct EmulatedEvent {
  std::mutex mutex;
  std::condition_variable reached;
  uint64_t recorded = 0;
  uint64_t completed = 0;
  std::chrono::steady_clock::time_point at;

  void wait_for(uint64_t generation) {
    std::unique_lock<std::mutex> lock(mutex);
    reached.wait(lock, [&] { return completed >= generation; });
  }
};

namespace sn_emulation {

namespace {

// A barrier among fibers: the last to arrive moves the generation on, which makes the others runnable again.
struct Barrier {
  unsigned expected = 0;
  unsigned arrived = 0;
  uint64_t generation = 0;
};

struct Copy {
  void* target;
  const void* source;
  int bytes;
};

constexpr size_t kStackBytes = size_t(256) << 10;

// Switching fibers: on x86-64 a few instructions that save the callee-saved registers and the floating-point control
// words on the old stack and restore them from the new one (swapcontext also swaps the signal mask, a system call per
// switch); elsewhere, ucontext.
#if defined(__x86_64__)
extern "C" void sn_fiber_switch(void** save_stack, void* load_stack);
asm(R"(
  .text
  .globl sn_fiber_switch
  .hidden sn_fiber_switch
  .type sn_fiber_switch, @function
sn_fiber_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size sn_fiber_switch, .-sn_fiber_switch
)");
struct Context {
  void* stack_pointer = nullptr;
};
// A fresh stack whose first switch "returns" into entry(), aligned as if entry had been called.
void make_context(Context& c, char* stack, size_t bytes, void (*entry)()) {
  auto top = reinterpret_cast<uintptr_t>(stack + bytes) & ~uintptr_t(15);
  auto* sp = reinterpret_cast<uint64_t*>(top);
  *--sp = 0;                                  // entry's return address: it never returns
  *--sp = reinterpret_cast<uint64_t>(entry);  // popped by ret
  for (int k = 0; k < 6; ++k) *--sp = 0;      // rbp, rbx, r12–r15
  *--sp = (uint64_t(0x037F) << 32) | 0x1F80;  // fnstcw word at +4, mxcsr at +0: the defaults
  c.stack_pointer = sp;
}
void switch_context(Context& from, Context& to) { sn_fiber_switch(&from.stack_pointer, to.stack_pointer); }
#else
struct Context {
  ucontext_t context{};
};
void make_context(Context& c, char* stack, size_t bytes, void (*entry)()) {
  getcontext(&c.context);
  c.context.uc_stack.ss_sp = stack;
  c.context.uc_stack.ss_size = bytes;
  c.context.uc_link = nullptr;
  makecontext(&c.context, entry, 0);
}
void switch_context(Context& from, Context& to) { swapcontext(&from.context, &to.context); }
#endif

// One CUDA thread: a user-space fiber with its own stack, index and cp.async groups.
struct Fiber {
  Context context;
  std::unique_ptr<char[]> stack;
  unsigned rank = 0;  // block rank in the cluster
  dim3 thread;
  dim3 block;
  dim3 grid;
  bool finished = false;
  Barrier* waiting = nullptr;
  uint64_t waiting_generation = 0;
  uint64_t exchanges = 0;          // warp exchanges so far: which half of the double-buffered exchange to use
  std::vector<Copy> copies;        // issued and not yet landed, oldest first
  std::vector<size_t> group_ends;  // committed groups, as counts of `copies`
};

thread_local Fiber* current_fiber = nullptr;
thread_local Context scheduler_context;

void arrive_and_wait(Barrier& b) {
  Fiber* f = current_fiber;
  const uint64_t generation = b.generation;
  if (++b.arrived == b.expected) {
    b.arrived = 0;
    ++b.generation;  // the others may run again; this one goes on
    return;
  }
  f->waiting = &b;
  f->waiting_generation = generation;
  switch_context(f->context, scheduler_context);
}

// The fibers for one launch shape: `threads` per block, `cluster` blocks at a time, all on the thread that runs the
// launch (a stream's). A barrier switches to the next runnable fiber; the scheduler alternates the order in which it
// resumes them, so that a read racing a write of another thread shows in one order or the other.
class Grid {
 public:
  Grid(unsigned threads, unsigned cluster) : threads_(threads), cluster_(cluster), fibers_(threads * cluster) {
    for (unsigned r = 0; r < cluster; ++r) {
      Block& b = blocks_.emplace_back();
      b.barrier.expected = threads;
      for (unsigned w = 0; w < (threads + kWarpSize - 1) / kWarpSize; ++w) {
        Barrier warp;
        warp.expected = std::min(kWarpSize, threads - w * kWarpSize);
        b.warps.push_back(warp);
      }
      b.exchange.assign(2 * threads, 0.0);
      b.or_flags.assign(threads, 0);
    }
    cluster_barrier_.expected = threads * cluster;
    for (unsigned k = 0; k < fibers_.size(); ++k) {
      fibers_[k].rank = k / threads;
      fibers_[k].thread = dim3(k % threads, 0, 0);
      fibers_[k].stack = std::make_unique<char[]>(kStackBytes);
    }
  }

  void run(unsigned blocks, size_t shared, const std::function<void()>& body) {
    body_ = &body;
    for (Block& b : blocks_) b.shared.resize(shared);
    for (unsigned c = 0; c * cluster_ < blocks; ++c) {
      for (Block& b : blocks_) std::fill(b.shared.begin(), b.shared.end(), static_cast<unsigned char>(0xff));
      for (Fiber& f : fibers_) {
        f.block = dim3(c * cluster_ + f.rank, 0, 0);
        f.grid = dim3(blocks, 1, 1);
        f.finished = false;
        f.waiting = nullptr;
        f.exchanges = 0;
        f.copies.clear();
        f.group_ends.clear();
        make_context(f.context, f.stack.get(), kStackBytes, &Grid::start);
      }
      schedule();
    }
  }

  struct Block {
    Barrier barrier;
    std::vector<Barrier> warps;
    std::vector<double> exchange;  // two halves of `threads` values
    std::vector<int> or_flags;
    std::vector<unsigned char> shared;
  };
  Block& block(unsigned rank) { return blocks_[rank]; }
  Barrier& cluster_barrier() { return cluster_barrier_; }

 private:
  static void start() {
    Fiber* f = current_fiber;
    (*current_grid_body)();
    f->finished = true;
    switch_context(f->context, scheduler_context);  // never resumed
    std::abort();
  }

  void schedule() {
    current_grid_body = body_;
    bool forward = true;
    for (;;) {
      bool unfinished = false, ran = false;
      for (size_t n = 0; n < fibers_.size(); ++n) {
        Fiber& f = fibers_[forward ? n : fibers_.size() - 1 - n];
        if (f.finished) continue;
        unfinished = true;
        if (f.waiting && f.waiting->generation == f.waiting_generation) continue;
        f.waiting = nullptr;
        current_fiber = &f;
        switch_context(scheduler_context, f.context);
        current_fiber = nullptr;
        ran = true;
      }
      if (!unfinished) return;
      if (!ran) {
        std::fprintf(stderr, "CUDA emulation: every thread of a block waits at a barrier some never reach\n");
        std::abort();
      }
      forward = !forward;
    }
  }

  static thread_local const std::function<void()>* current_grid_body;
  const unsigned threads_, cluster_;
  const std::function<void()>* body_ = nullptr;
  std::vector<Fiber> fibers_;
  std::deque<Block> blocks_;
  Barrier cluster_barrier_;
};

thread_local const std::function<void()>* Grid::current_grid_body = nullptr;
thread_local Grid* current_grid = nullptr;

// One Grid per launch shape; launches run one at a time, whatever their stream.
std::mutex launch_mutex;
std::map<std::pair<unsigned, unsigned>, std::unique_ptr<Grid>>& grids() {
  static auto* g = new std::map<std::pair<unsigned, unsigned>, std::unique_ptr<Grid>>;
  return *g;
}

Grid::Block& my_block() { return current_grid->block(current_fiber->rank); }

}  // namespace

dim3& thread_index() { return current_fiber->thread; }
dim3& block_index() { return current_fiber->block; }
dim3& grid_dim() { return current_fiber->grid; }

void launch(cudaStream_t stream, unsigned blocks, unsigned threads, size_t shared, unsigned cluster,
            std::function<void()> body) {
  if (blocks == 0 || threads == 0 || cluster == 0 || cluster > kMaxCluster || blocks % cluster != 0 ||
      shared > kMaxSharedBytes) {
    last_error = cudaErrorInvalidValue;
    return;
  }
  auto run = [blocks, threads, shared, cluster, body = std::move(body)] {
    std::lock_guard<std::mutex> lock(launch_mutex);
    std::unique_ptr<Grid>& grid = grids()[{threads, cluster}];
    if (!grid) grid = std::make_unique<Grid>(threads, cluster);
    current_grid = grid.get();
    grid->run(blocks, shared, body);
    current_grid = nullptr;
  };
  if (stream == nullptr) {
    run();
  } else {
    stream->enqueue(std::move(run));
  }
}

void block_barrier() { arrive_and_wait(my_block().barrier); }

int block_barrier_or(int value) {
  Grid::Block& b = my_block();
  b.or_flags[current_fiber->thread.x] = value;
  arrive_and_wait(b.barrier);
  int any = 0;
  for (int f : b.or_flags) any |= f;
  arrive_and_wait(b.barrier);
  return any;
}

double warp_exchange(double value, unsigned source_lane) {
  Grid::Block& b = my_block();
  const unsigned lane_index = current_fiber->thread.x;
  const unsigned warp = lane_index / kWarpSize;
  // Double-buffered: the next exchange writes the other half, and a lane can reach the one after only once every
  // lane has passed the next barrier, that is, has read this one.
  double* half = b.exchange.data() + (current_fiber->exchanges++ & 1) * b.or_flags.size();
  half[lane_index] = value;
  arrive_and_wait(b.warps[warp]);
  return half[warp * kWarpSize + source_lane];
}

void cluster_barrier() { arrive_and_wait(current_grid->cluster_barrier()); }

unsigned cluster_rank() { return current_fiber->rank; }

void* cluster_peer(void* shared, unsigned rank) {
  unsigned char* mine = my_block().shared.data();
  const size_t offset = static_cast<unsigned char*>(shared) - mine;
  if (offset >= my_block().shared.size()) std::abort();  // not this block's shared memory: a kernel bug
  return current_grid->block(rank).shared.data() + offset;
}

unsigned char* dynamic_shared() { return my_block().shared.data(); }

void copy_async(void* shared, const void* global, int bytes) {
  current_fiber->copies.push_back({shared, global, bytes});
}

void copy_async_commit() { current_fiber->group_ends.push_back(current_fiber->copies.size()); }

void copy_async_wait(int pending) {
  Fiber* f = current_fiber;
  if (f->group_ends.size() <= static_cast<size_t>(pending)) return;
  const size_t landed_groups = f->group_ends.size() - pending;
  const size_t landed = f->group_ends[landed_groups - 1];
  for (size_t k = 0; k < landed; ++k) std::memcpy(f->copies[k].target, f->copies[k].source, f->copies[k].bytes);
  f->copies.erase(f->copies.begin(), f->copies.begin() + landed);
  f->group_ends.erase(f->group_ends.begin(), f->group_ends.begin() + landed_groups);
  for (size_t& end : f->group_ends) end -= landed;
}

}  // namespace sn_emulation

const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorStreamCaptureUnsupported: return "cudaErrorStreamCaptureUnsupported";
    default: return "cudaErrorUnknown";
  }
}
const char* cudaGetErrorString(cudaError_t e) {
  return e == cudaErrorMemoryAllocation ? "out of memory" : "emulated error";
}
cudaError_t cudaGetLastError() {
  const cudaError_t e = last_error;
  last_error = cudaSuccess;
  return e;
}
cudaError_t cudaGetDeviceCount(int* count) {
  *count = emulated_devices();
  return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (!is_device(device)) return fail(cudaErrorInvalidDevice);
  std::strcpy(prop->name, "CUDA emulation on the CPU (SN_CUDA=EMULATE)");
  prop->major = 0;
  prop->minor = 0;
  prop->totalGlobalMem = size_t(1) << 30;
  return cudaSuccess;
}
cudaError_t cudaRuntimeGetVersion(int* v) {
  *v = 0;
  return cudaSuccess;
}
cudaError_t cudaDriverGetVersion(int* v) {
  *v = 0;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int device) { return is_device(device) ? cudaSuccess : fail(cudaErrorInvalidDevice); }
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int) {
  *value = attr == cudaDevAttrMultiProcessorCount ? 2 : 1;
  return cudaSuccess;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned) {
  *stream = new EmulatedStream;
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  if (stream) stream->synchronize();
  delete stream;
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  if (stream == nullptr) return cudaSuccess;
  if (stream->capture) return fail(cudaErrorStreamCaptureUnsupported);
  stream->synchronize();
  return cudaSuccess;
}
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned) {
  if (stream->capture) return fail(cudaErrorStreamCaptureUnsupported);  // not needed inside a capture here
  const uint64_t generation = event->recorded;
  stream->enqueue([event, generation] { event->wait_for(generation); });
  return cudaSuccess;
}
cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode) {
  if (stream == nullptr || stream->capture) return fail(cudaErrorStreamCaptureUnsupported);
  stream->capture = new EmulatedGraph;
  return cudaSuccess;
}
cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph) {
  if (stream == nullptr || !stream->capture) return fail(cudaErrorStreamCaptureInvalidated);
  *graph = stream->capture;
  stream->capture = nullptr;
  return cudaSuccess;
}
cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long) {
  *exec = new EmulatedGraphExec{std::make_shared<const std::vector<std::function<void()>>>(graph->ops)};
  return cudaSuccess;
}
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream) {
  if (stream->capture) return fail(cudaErrorStreamCaptureUnsupported);
  auto ops = exec->ops;  // the launch keeps the work alive even if the graph is destroyed before it runs
  stream->enqueue([ops] {
    for (const auto& op : *ops) op();
  });
  return cudaSuccess;
}
cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  delete graph;
  return cudaSuccess;
}
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  delete exec;
  return cudaSuccess;
}

cudaError_t cudaMalloc(void** p, size_t bytes) {
  // SN_EMULATION_MEMORY caps the emulated device's memory, to test out-of-memory paths.
  static const size_t cap =
      std::getenv("SN_EMULATION_MEMORY") ? std::strtoull(std::getenv("SN_EMULATION_MEMORY"), nullptr, 10) : 0;
  if (cap && bytes > cap) return fail(cudaErrorMemoryAllocation);
  *p = std::malloc(bytes);
  if (*p == nullptr) return fail(cudaErrorMemoryAllocation);
  std::memset(*p, 0xff, bytes);  // poison: NaN for floats and doubles, so unwritten scratch shows
  return cudaSuccess;
}
cudaError_t cudaFree(void* p) {
  std::free(p);
  return cudaSuccess;
}
cudaError_t cudaHostAlloc(void** p, size_t bytes, unsigned) {
  *p = std::malloc(bytes);
  if (*p == nullptr) return fail(cudaErrorMemoryAllocation);
  std::memset(*p, 0xff, bytes);
  std::lock_guard<std::mutex> lock(pinned_mutex);
  pinned_ranges[static_cast<const char*>(*p)] = bytes;
  return cudaSuccess;
}
cudaError_t cudaFreeHost(void* p) {
  {
    std::lock_guard<std::mutex> lock(pinned_mutex);
    pinned_ranges.erase(static_cast<const char*>(p));
  }
  std::free(p);
  return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t s) {
  const void* host = kind == cudaMemcpyHostToDevice ? src : kind == cudaMemcpyDeviceToHost ? dst : nullptr;
  if (s == nullptr || (host != nullptr && !is_pinned(host, bytes))) {
    // Pageable host memory: the copy is done when the call returns, after the stream's earlier work.
    if (s != nullptr && s->capture) return fail(cudaErrorStreamCaptureUnsupported);
    if (s != nullptr) s->synchronize();
    std::memmove(dst, src, bytes);
    return cudaSuccess;
  }
  s->enqueue([=] { std::memmove(dst, src, bytes); });
  return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t s) {
  if (s == nullptr) {
    std::memset(dst, value, bytes);
  } else {
    s->enqueue([=] { std::memset(dst, value, bytes); });
  }
  return cudaSuccess;
}
cudaError_t cudaEventCreate(cudaEvent_t* e) {
  *e = new EmulatedEvent;
  return cudaSuccess;
}
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned) { return cudaEventCreate(e); }
cudaError_t cudaEventDestroy(cudaEvent_t e) {
  delete e;
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
  if (s != nullptr && s->capture) return fail(cudaErrorStreamCaptureUnsupported);  // not needed inside a capture here
  uint64_t generation;
  {
    std::lock_guard<std::mutex> lock(e->mutex);
    generation = ++e->recorded;
  }
  auto reach = [e, generation] {
    std::lock_guard<std::mutex> lock(e->mutex);
    e->at = std::chrono::steady_clock::now();
    e->completed = std::max(e->completed, generation);
    e->reached.notify_all();
  };
  if (s == nullptr) {
    reach();
  } else {
    s->enqueue(reach);
  }
  return cudaSuccess;
}
cudaError_t cudaEventQuery(cudaEvent_t e) {
  std::lock_guard<std::mutex> lock(e->mutex);
  return e->completed >= e->recorded ? cudaSuccess : cudaErrorNotReady;
}
cudaError_t cudaEventSynchronize(cudaEvent_t e) {
  e->wait_for(e->recorded);
  return cudaSuccess;
}
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t a, cudaEvent_t b) {
  *ms = std::chrono::duration<float, std::milli>(b->at - a->at).count();
  return cudaSuccess;
}
