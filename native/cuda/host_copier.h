#pragma once
// A few host threads that copy between the caller's arrays and pinned staging memory, and divide host weights by σ,
// in parallel: one thread's memcpy moves about 10 GB/s, less than a PCIe link, so the staged transfers of
// host_transfer.h split every chunk over these threads and the caller's. Plain C++, no CUDA. Created per device
// context, joined when the context is released.
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace sn::cuda {

class HostCopier {
 public:
  // `threads` helpers besides the calling thread; 0 runs everything on the caller.
  explicit HostCopier(unsigned threads);
  ~HostCopier();
  HostCopier(const HostCopier&) = delete;
  HostCopier& operator=(const HostCopier&) = delete;

  // Runs body(part) for every part in [0, parts()), the caller taking part 0; returns when all are done. Not
  // reentrant: one run at a time (the device context's mutex is held around it).
  void run(const std::function<void(unsigned)>& body);
  unsigned parts() const { return static_cast<unsigned>(workers_.size()) + 1; }

  // The helpers SN_CUDA_COPY_THREADS asks for, else half the hardware threads, at most 8.
  static unsigned default_threads();

 private:
  std::mutex mutex_;
  std::condition_variable start_, finished_;
  const std::function<void(unsigned)>* body_ = nullptr;
  unsigned long long generation_ = 0;
  unsigned running_ = 0;
  bool stop_ = false;
  std::vector<std::thread> workers_;
};

// A copy of `bytes` bytes from `source` to `target`, one piece of a staged transfer.
struct CopyPiece {
  void* target;
  const void* source;
  size_t bytes;
};

// Copies the pieces on the copier's threads, each taking an equal share of the bytes.
void parallel_copy(HostCopier& copier, const std::vector<CopyPiece>& pieces);

// Share `part` of `parts` equal shares of `total` units over pieces laid end to end (piece p has size(p) units):
// calls fn(p, first, count) for each piece that overlaps the share, with the overlap as an offset into p and a count.
template <typename Piece, typename Size, typename Fn>
void for_each_in_share(const std::vector<Piece>& pieces, size_t total, unsigned part, unsigned parts, Size size,
                       Fn fn) {
  const size_t begin = total * part / parts;
  const size_t end = total * (part + 1) / parts;
  size_t at = 0;
  for (const Piece& p : pieces) {
    const size_t n = size(p);
    const size_t lo = begin > at ? begin : at;
    const size_t hi = end < at + n ? end : at + n;
    if (lo < hi) fn(p, lo - at, hi - lo);
    at += n;
    if (at >= end) break;
  }
}

}  // namespace sn::cuda
