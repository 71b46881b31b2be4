#pragma once
// The one C++ vocabulary every backend and the binding share: a layer's outcome, the CUDA commit items' kinds, and
// the `code` of the JS errors that are not argument errors. lib/codes.ts defines the same values for TypeScript;
// test/core/codes.test.ts checks that the two agree (through the addon's internal.codes, native/binding/testing.cc).
// Plain enums and string constants: the CUDA kernels include this file too.
#include <cstdint>

namespace sn {

// Per-layer outcome of a job, written into PowerJob.status (binding.d.ts).
enum class LayerStatus : int32_t {
  kNormalized = 0,  // u, v replaced; out = W/σ
  kBelowEps = 1,    // |σ| ≤ eps: u and v kept, out = W unchanged
  kNonFinite = 2,   // NaN or ±Inf in W, or an overflow: nothing in the whole batch was modified
};

// What one block of the CUDA commit kernel does (native/cuda/batch_plan.h, CommitItem).
enum class CommitKind : uint32_t {
  kDivide = 0,   // out = W/σ over a range of a layer's elements
  kVectors = 1,  // write a layer's new u and v
};

// The `code` property of errors that are not about an argument. The native side raises the first two;
// lib/coalescer.ts raises the last two, listed here so that the vocabulary is complete in both languages.
enum class ErrorCode {
  kOutOfMemory,  // scratch, device or staging memory could not be had; nothing was modified
  kCuda,         // the CUDA runtime or device failed
  kQueueFull,    // SpectralNormCoalescer: maxQueue requests are already waiting
  kClosed,       // SpectralNormCoalescer: close() was called
};

constexpr const char* error_code_string(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOutOfMemory: return "ERR_SPECTRAL_NORM_OUT_OF_MEMORY";
    case ErrorCode::kCuda: return "ERR_SPECTRAL_NORM_CUDA";
    case ErrorCode::kQueueFull: return "ERR_SPECTRAL_NORM_QUEUE_FULL";
    case ErrorCode::kClosed: return "ERR_SPECTRAL_NORM_CLOSED";
  }
  return "";
}

// Each value under its name in lib/codes.ts, for the test that compares the two languages.
template <typename E>
struct NamedCode {
  const char* name;
  E value;
};
inline constexpr NamedCode<LayerStatus> kLayerStatusNames[] = {{"Normalized", LayerStatus::kNormalized},
                                                               {"BelowEps", LayerStatus::kBelowEps},
                                                               {"NonFinite", LayerStatus::kNonFinite}};
inline constexpr NamedCode<CommitKind> kCommitKindNames[] = {{"Divide", CommitKind::kDivide},
                                                             {"Vectors", CommitKind::kVectors}};
inline constexpr NamedCode<ErrorCode> kErrorCodeNames[] = {{"OutOfMemory", ErrorCode::kOutOfMemory},
                                                           {"Cuda", ErrorCode::kCuda},
                                                           {"QueueFull", ErrorCode::kQueueFull},
                                                           {"Closed", ErrorCode::kClosed}};

}  // namespace sn
