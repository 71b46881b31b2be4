#pragma once
// Convolution operators at the binding: binding.d.ts's ConvOperator unmarshalled (for operator layers of a power job
// and for the two convolution calls), and convApply and convSpectrum themselves.
#include <napi.h>

#include <string>

#include "../common/conv_geometry.h"

namespace sn::binding {

// A layer's `operator` field: false when it is null or undefined (a matrix layer); otherwise fills `geometry` and
// returns true, or throws a TypeError or RangeError naming `name`.
bool parse_operator(Napi::Env env, const Napi::Value& value, const std::string& name, ConvGeometry* geometry);

// convApply(job: ConvApplyJob): void — a convolution or its transpose, on the CPU.
Napi::Value ConvApply(const Napi::CallbackInfo& info);

// convSpectrum(job: ConvSpectrumJob): ConvSpectrumResult — the FFT method's certified bound, on the CPU.
Napi::Value ConvSpectrum(const Napi::CallbackInfo& info);

}  // namespace sn::binding
