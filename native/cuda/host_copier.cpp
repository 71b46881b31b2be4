// HostCopier (host_copier.h): a fixed set of helper threads woken per run, and parallel_copy over them.
#include "host_copier.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace sn::cuda {

HostCopier::HostCopier(unsigned threads) {
  for (unsigned i = 0; i < threads; ++i) {
    workers_.emplace_back([this, part = i + 1] {
      unsigned long long seen = 0;
      for (;;) {
        const std::function<void(unsigned)>* body;
        {
          std::unique_lock<std::mutex> lock(mutex_);
          start_.wait(lock, [&] { return stop_ || generation_ != seen; });
          if (stop_) return;
          seen = generation_;
          body = body_;
        }
        (*body)(part);
        std::lock_guard<std::mutex> lock(mutex_);
        if (--running_ == 0) finished_.notify_one();
      }
    });
  }
}

HostCopier::~HostCopier() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  start_.notify_all();
  for (std::thread& w : workers_) w.join();
}

void HostCopier::run(const std::function<void(unsigned)>& body) {
  if (workers_.empty()) {
    body(0);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    body_ = &body;
    running_ = static_cast<unsigned>(workers_.size());
    ++generation_;
  }
  start_.notify_all();
  body(0);
  std::unique_lock<std::mutex> lock(mutex_);
  finished_.wait(lock, [&] { return running_ == 0; });
  body_ = nullptr;
}

unsigned HostCopier::default_threads() {
  if (const char* v = std::getenv("SN_CUDA_COPY_THREADS")) {
    const long n = std::strtol(v, nullptr, 10);
    if (n >= 1) return static_cast<unsigned>(std::min<long>(n, 64)) - 1;
  }
  const unsigned hardware = std::max(1u, std::thread::hardware_concurrency());
  return std::min(8u, std::max(1u, hardware / 2)) - 1;
}

void parallel_copy(HostCopier& copier, const std::vector<CopyPiece>& pieces) {
  size_t total = 0;
  for (const CopyPiece& p : pieces) total += p.bytes;
  if (total == 0) return;
  const unsigned parts = copier.parts();
  auto body = [&](unsigned part) {
    for_each_in_share(
        pieces, total, part, parts, [](const CopyPiece& p) { return p.bytes; },
        [](const CopyPiece& p, size_t first, size_t count) {
          std::memcpy(static_cast<char*>(p.target) + first, static_cast<const char*>(p.source) + first, count);
        });
  };
  if (total < (size_t(1) << 16) || parts == 1) {  // small: not worth waking the helpers
    for (unsigned k = 0; k < parts; ++k) body(k);
    return;
  }
  copier.run(body);
}

}  // namespace sn::cuda
