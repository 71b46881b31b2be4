// Staged transfers and the host division (host_transfer.h).
#include "host_transfer.h"

#include <algorithm>
#include <cstring>

namespace sn::cuda {
namespace {

// The parts of the pieces that fall in [begin, end) of the image, as copies to or from `staging` (which holds those
// bytes of the image). `first` skips pieces that end before `begin`; pieces are sorted.
void pieces_in(const std::vector<StagedPiece>& pieces, size_t& first, size_t begin, size_t end, char* staging,
               bool to_staging, std::vector<CopyPiece>& out) {
  out.clear();
  while (first < pieces.size() && pieces[first].offset + pieces[first].bytes <= begin) ++first;
  for (size_t k = first; k < pieces.size() && pieces[k].offset < end; ++k) {
    const StagedPiece& p = pieces[k];
    const size_t lo = std::max(p.offset, begin);
    const size_t hi = std::min(p.offset + p.bytes, end);
    if (lo >= hi) continue;
    char* host = static_cast<char*>(p.host) + (lo - p.offset);
    char* staged = staging + (lo - begin);
    out.push_back(to_staging ? CopyPiece{staged, host, hi - lo} : CopyPiece{host, staged, hi - lo});
  }
}

}  // namespace

void upload_image(Session& session, char* image, size_t image_bytes, const std::vector<StagedPiece>& pieces) {
  if (image_bytes == 0) return;
  session.ensure_ring();
  DeviceContext& c = session.context();
  const size_t chunk = c.chunk_bytes;
  std::vector<CopyPiece> work;
  size_t first = 0;
  for (size_t k = 0, begin = 0; begin < image_bytes; ++k, begin += chunk) {
    const size_t end = std::min(begin + chunk, image_bytes);
    const int slot = static_cast<int>(k % kRingSlots);
    char* staging = static_cast<char*>(c.ring.data) + slot * chunk;
    // The slot's previous chunk must have left before the host refills it. (A call's first chunks find every slot
    // free: the previous call waited for all of its copies.)
    if (k >= static_cast<size_t>(kRingSlots)) SN_CUDA_CHECK(cudaEventSynchronize(c.slot_free[slot]));
    pieces_in(pieces, first, begin, end, staging, true, work);
    parallel_copy(session.copier(), work);
    SN_CUDA_CHECK(cudaMemcpyAsync(image + begin, staging, end - begin, cudaMemcpyHostToDevice, c.copy_stream));
    SN_CUDA_CHECK(cudaEventRecord(c.slot_free[slot], c.copy_stream));
  }
  SN_CUDA_CHECK(cudaEventRecord(c.handoff, c.copy_stream));
  SN_CUDA_CHECK(cudaStreamWaitEvent(c.stream, c.handoff, 0));
}

void download_image(Session& session, const char* image, size_t image_bytes, const std::vector<StagedPiece>& pieces) {
  if (image_bytes == 0) return;
  session.ensure_ring();
  DeviceContext& c = session.context();
  const size_t chunk = c.chunk_bytes;
  const size_t chunks = (image_bytes + chunk - 1) / chunk;
  // The copy stream starts after what the compute stream has queued (the kernels that wrote the image).
  SN_CUDA_CHECK(cudaEventRecord(c.handoff, c.stream));
  SN_CUDA_CHECK(cudaStreamWaitEvent(c.copy_stream, c.handoff, 0));
  auto start = [&](size_t k) {
    const size_t begin = k * chunk;
    const int slot = static_cast<int>(k % kRingSlots);
    char* staging = static_cast<char*>(c.ring.data) + slot * chunk;
    SN_CUDA_CHECK(cudaMemcpyAsync(staging, image + begin, std::min(chunk, image_bytes - begin), cudaMemcpyDeviceToHost,
                                  c.copy_stream));
    SN_CUDA_CHECK(cudaEventRecord(c.slot_free[slot], c.copy_stream));
  };
  for (size_t k = 0; k < std::min<size_t>(chunks, kRingSlots); ++k) start(k);
  std::vector<CopyPiece> work;
  size_t first = 0;
  for (size_t k = 0; k < chunks; ++k) {
    const int slot = static_cast<int>(k % kRingSlots);
    SN_CUDA_CHECK(cudaEventSynchronize(c.slot_free[slot]));  // chunk k is in the slot
    const size_t begin = k * chunk;
    pieces_in(pieces, first, begin, std::min(begin + chunk, image_bytes),
              static_cast<char*>(c.ring.data) + slot * chunk, false, work);
    parallel_copy(session.copier(), work);
    if (k + kRingSlots < chunks) start(k + kRingSlots);
  }
}

template <typename T>
void divide_on_host(HostCopier& copier, const std::vector<HostDivision<T>>& divisions) {
  size_t total = 0;
  for (const HostDivision<T>& d : divisions) total += d.n;
  if (total == 0) return;
  const unsigned parts = copier.parts();
  auto body = [&](unsigned part) {
    for_each_in_share(
        divisions, total, part, parts, [](const HostDivision<T>& d) { return d.n; },
        [](const HostDivision<T>& d, size_t first, size_t n) {
          const T* w = d.weight + first;
          T* out = d.out + first;
          if (d.copy_only) {
            if (out != w) std::memmove(out, w, n * sizeof(T));
          } else {
            const T sigma = d.sigma;
            for (size_t i = 0; i < n; ++i) out[i] = w[i] / sigma;  // the same IEEE division as the device's
          }
        });
  };
  if (total < (size_t(1) << 15)) {
    for (unsigned k = 0; k < parts; ++k) body(k);
  } else {
    copier.run(body);
  }
}

template void divide_on_host<float>(HostCopier&, const std::vector<HostDivision<float>>&);
template void divide_on_host<double>(HostCopier&, const std::vector<HostDivision<double>>&);

}  // namespace sn::cuda
