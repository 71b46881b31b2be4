#pragma once
// The addon's `internal` object (binding.d.ts NativeInternals): test hooks (testing.cc) and benchmark probes
// (bench.cc). Never part of the public API: lib/index.ts does not expose them.
#include <napi.h>

namespace sn::binding {

// testFailScratchAllocation, testScratchAllocationCount, planCudaBatch, cudaResources, testCudaStagingChunk and codes.
void add_testing_hooks(Napi::Env env, Napi::Object internal);

// readBandwidth, cudaCopyBandwidth, cudaReadBandwidth and cudaTime.
void add_bench_probes(Napi::Env env, Napi::Object internal);

}  // namespace sn::binding
