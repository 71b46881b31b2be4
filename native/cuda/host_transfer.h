#pragma once
// Host arrays on the GPU at PCIe speed: copies between the caller's (pageable) arrays and device memory staged
// through the context's ring of pinned chunks on the copy stream, the host side of each chunk split over the copy
// threads, so the host fills chunk k+1 while chunk k is in flight. And the division of host weights by σ, done on the
// host once the batch is known to be finite: it needs only the caller's W, which never has to cross the bus again.
#include <cstddef>
#include <vector>

#include "device_context.h"

namespace sn::cuda {

// `bytes` bytes at `offset` in a device image, from (upload) or to (download) `host`.
struct StagedPiece {
  size_t offset;
  void* host;
  size_t bytes;
};

// Uploads the pieces (sorted by offset, disjoint) into the device range [image, image + image_bytes), chunk by chunk;
// the bytes no piece covers are left as they were or overwritten with junk. The context's compute stream waits for
// the upload; the call returns as soon as the last chunk is queued.
void upload_image(Session& session, char* image, size_t image_bytes, const std::vector<StagedPiece>& pieces);

// Downloads the device range [image, image + image_bytes), after everything queued on the compute stream, chunk by
// chunk, copying the pieces (sorted, disjoint) out to the host. Returns when they are all on the host.
void download_image(Session& session, const char* image, size_t image_bytes, const std::vector<StagedPiece>& pieces);

// out = W / σ over n elements, or a copy of W when copy_only (σ below eps); out may be W.
template <typename T>
struct HostDivision {
  const T* weight;
  T* out;
  size_t n;
  T sigma;
  bool copy_only;
};

// The divisions, split over the copy threads by elements.
template <typename T>
void divide_on_host(HostCopier& copier, const std::vector<HostDivision<T>>& divisions);

}  // namespace sn::cuda
