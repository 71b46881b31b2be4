// Test hooks, on the addon's `internal` object (internal.h): the scratch-allocation failure switch, the CUDA batch
// planner run without a GPU, the CUDA backend's resources and staging chunk, and the C++ vocabulary of
// native/common/codes.h for test/core/codes.test.ts.
#include <napi.h>

#include <cstdint>
#include <vector>

#include "../common/codes.h"
#include "../cpu/scratch_allocator.h"
#include "../cuda/batch_plan.h"
#include "../cuda/cuda_backend.h"
#include "errors.h"
#include "internal.h"

namespace sn::binding {
namespace {

// See native/cpu/scratch_allocator.h: makes the nth scratch allocation from now fail; 0 disarms.
Napi::Value TestFailScratchAllocation(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsNumber() || info[0].As<Napi::Number>().DoubleValue() < 0) {
    throw_range_error(info.Env(), "testFailScratchAllocation(n) takes a number >= 0");
  }
  fail_scratch_allocation(static_cast<uint64_t>(info[0].As<Napi::Number>().DoubleValue()));
  return info.Env().Undefined();
}

// Scratch allocations made so far, to size a sweep over each allocation of a call.
Napi::Value TestScratchAllocationCount(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(scratch_allocation_count()));
}

// The CUDA backend's work lists for a batch, planned as a run would plan them (see batch_plan.h), for a device with
// the given caps (default: 132 multiprocessors, clusters of 8, 256 threads, as an H100 or H200).
// planCudaBatch(layers: {outer, rows, inner, vectorNorm, hasOut, vectorLoads?}[], elementBytes, iterated, caps?).
Napi::Value PlanCudaBatch(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsArray() || !info[1].IsNumber()) {
    throw_type_error(env, "planCudaBatch(layers, elementBytes, iterated, caps?)");
  }
  const Napi::Array list = info[0].As<Napi::Array>();
  std::vector<cuda::PlanInput> inputs;
  for (uint32_t i = 0; i < list.Length(); ++i) {
    const Napi::Object l = list.Get(i).As<Napi::Object>();
    cuda::PlanInput p;
    p.layout.outer = l.Get("outer").As<Napi::Number>().Int64Value();
    p.layout.rows = l.Get("rows").As<Napi::Number>().Int64Value();
    p.layout.inner = l.Get("inner").As<Napi::Number>().Int64Value();
    p.vector_norm = l.Get("vectorNorm").ToBoolean();
    p.has_out = l.Get("hasOut").ToBoolean();
    p.vector_loads = l.Get("vectorLoads").IsUndefined() || l.Get("vectorLoads").ToBoolean();
    inputs.push_back(p);
  }
  cuda::DeviceCaps caps;
  if (info.Length() > 3 && info[3].IsObject()) {
    const Napi::Object c = info[3].As<Napi::Object>();
    auto read = [&](const char* key, uint32_t& field) {
      if (c.Get(key).IsNumber()) field = c.Get(key).As<Napi::Number>().Uint32Value();
    };
    read("multiprocessors", caps.multiprocessors);
    read("maxCluster", caps.max_cluster);
    read("blockThreads", caps.block_threads);
  }
  const cuda::BatchPlan plan =
      cuda::plan_batch(inputs, info[1].As<Napi::Number>().Uint32Value(), info[2].ToBoolean(), caps);
  auto number = [&](double x) { return Napi::Number::New(env, x); };
  Napi::Array layers = Napi::Array::New(env, plan.layers.size());
  for (size_t i = 0; i < plan.layers.size(); ++i) {
    const cuda::LayerPlan& p = plan.layers[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("kind", p.kind == cuda::SweepKind::kTiled ? "tiled" : "general");
    o.Set("slots", number(p.slots));
    o.Set("tiles", number(p.tiles));
    o.Set("tileColumns", number(static_cast<double>(p.tile_cols)));
    o.Set("units", number(p.units));
    o.Set("groups", number(p.groups));
    o.Set("chunks", number(p.chunks));
    o.Set("xOffset", number(p.x_offset));
    o.Set("dOffset", number(p.d_offset));
    o.Set("tOffset", number(p.t_offset));
    o.Set("partialOffset", number(p.partial_offset));
    o.Set("slotStatsOffset", number(p.slot_stats_offset));
    o.Set("chunkStatsOffset", number(p.chunk_stats_offset));
    layers.Set(static_cast<uint32_t>(i), o);
  }
  auto items = [&](auto const& list, auto fill) {
    Napi::Array a = Napi::Array::New(env, list.size());
    for (size_t i = 0; i < list.size(); ++i) {
      Napi::Object o = Napi::Object::New(env);
      fill(o, list[i]);
      a.Set(static_cast<uint32_t>(i), o);
    }
    return a;
  };
  Napi::Object result = Napi::Object::New(env);
  result.Set("layers", layers);
  result.Set("sweep", items(plan.sweep, [&](Napi::Object& o, const cuda::SweepItem& s) {
               o.Set("layer", number(s.layer));
               o.Set("slot", number(s.slot));
               o.Set("tile", number(s.tile));
               o.Set("begin", number(static_cast<double>(s.row_begin)));
               o.Set("end", number(static_cast<double>(s.row_end)));
             }));
  result.Set("launches", items(plan.launches, [&](Napi::Object& o, const cuda::SweepLaunch& l) {
               o.Set("kind", l.kind == cuda::SweepKind::kTiled ? "tiled" : "general");
               o.Set("cluster", number(l.cluster));
               o.Set("units", number(l.units));
               o.Set("vectorLoads", Napi::Boolean::New(env, l.vector_loads != 0));
               o.Set("begin", number(l.item_begin));
               o.Set("count", number(l.item_count));
             }));
  result.Set("reduce", items(plan.reduce, [&](Napi::Object& o, const cuda::ReduceItem& r) {
               o.Set("layer", number(r.layer));
               o.Set("group", number(r.group));
               o.Set("begin", number(static_cast<double>(r.col_begin)));
               o.Set("end", number(static_cast<double>(r.col_end)));
             }));
  result.Set("finish", items(plan.finish, [&](Napi::Object& o, const cuda::FinishItem& f) {
               o.Set("layer", number(f.layer));
               o.Set("chunk", number(f.chunk));
               o.Set("begin", number(static_cast<double>(f.col_begin)));
               o.Set("end", number(static_cast<double>(f.col_end)));
             }));
  result.Set("commit", items(plan.commit, [&](Napi::Object& o, const cuda::CommitItem& c) {
               o.Set("layer", number(c.layer));
               o.Set("kind", number(static_cast<double>(c.kind)));
               o.Set("begin", number(static_cast<double>(c.begin)));
               o.Set("end", number(static_cast<double>(c.end)));
             }));
  result.Set("vectorItems", number(plan.vector_items));
  result.Set("divideBlocks", number(plan.divide_blocks));
  result.Set("doubles", number(static_cast<double>(plan.doubles)));
  return result;
}

// What the CUDA backend holds now (cuda_backend.h, ResourceCounts): a test checks that it all goes when the last
// environment using CUDA ends.
Napi::Value CudaResources(const Napi::CallbackInfo& info) {
  const cuda::ResourceCounts c = cuda::resource_counts();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("users", static_cast<double>(c.users));
  o.Set("contexts", static_cast<double>(c.contexts));
  o.Set("arenaBytes", static_cast<double>(c.arena_bytes));
  o.Set("pinnedBytes", static_cast<double>(c.pinned_bytes));
  o.Set("graphs", static_cast<double>(c.graphs));
  o.Set("deviceArrayBytes", static_cast<double>(c.device_array_bytes));
  return o;
}

// testCudaStagingChunk(bytes): the staging chunk of the next ring allocation (0: the default), so a small job crosses
// several chunks.
Napi::Value TestCudaStagingChunk(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsNumber() || info[0].As<Napi::Number>().DoubleValue() < 0) {
    throw_range_error(info.Env(), "testCudaStagingChunk(bytes) takes a number >= 0");
  }
  cuda::set_staging_chunk_bytes(static_cast<size_t>(info[0].As<Napi::Number>().DoubleValue()));
  return info.Env().Undefined();
}

// { name: value } for one of codes.h's tables.
template <typename E, size_t N, typename Value>
Napi::Object code_table(Napi::Env env, const NamedCode<E> (&table)[N], Value value) {
  Napi::Object o = Napi::Object::New(env);
  for (const NamedCode<E>& entry : table) o.Set(entry.name, value(entry.value));
  return o;
}

// codes: { layerStatus, commitKind, errorCode }, each keyed by the names lib/codes.ts uses.
Napi::Object Codes(Napi::Env env) {
  auto integer = [&](auto v) { return Napi::Number::New(env, static_cast<double>(v)); };
  Napi::Object codes = Napi::Object::New(env);
  codes.Set("layerStatus", code_table(env, kLayerStatusNames, integer));
  codes.Set("commitKind", code_table(env, kCommitKindNames, integer));
  codes.Set("errorCode", code_table(env, kErrorCodeNames,
                                    [&](ErrorCode c) { return Napi::String::New(env, error_code_string(c)); }));
  return codes;
}

}  // namespace

void add_testing_hooks(Napi::Env env, Napi::Object internal) {
  export_function<TestFailScratchAllocation>(env, internal, "testFailScratchAllocation");
  export_function<TestScratchAllocationCount>(env, internal, "testScratchAllocationCount");
  export_function<PlanCudaBatch>(env, internal, "planCudaBatch");
  export_function<CudaResources>(env, internal, "cudaResources");
  export_function<TestCudaStagingChunk>(env, internal, "testCudaStagingChunk");
  internal.Set("codes", Codes(env));
}

}  // namespace sn::binding
