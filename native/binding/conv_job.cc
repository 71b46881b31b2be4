#include "conv_job.h"

#include <cmath>
#include <exception>
#include <vector>

#include "../cpu/conv_operator.h"
#include "../cpu/conv_spectrum.h"
#include "errors.h"

namespace sn::binding {
namespace {

double number_of(Napi::Env env, const Napi::Object& object, const char* key, const std::string& owner) {
  const Napi::Value value = object.Get(key);
  if (!value.IsNumber()) throw_type_error(env, owner + "." + key + " must be a number");
  return value.As<Napi::Number>().DoubleValue();
}

size_t count_of(Napi::Env env, const Napi::Object& object, const char* key, const std::string& owner, double min) {
  const double x = number_of(env, object, key, owner);
  if (!(x >= min && x <= 2147483647.0) || std::floor(x) != x) {
    throw_range_error(env, owner + "." + key + " must be an integer from " + std::to_string(int(min)) + " to 2^31 - 1");
  }
  return static_cast<size_t>(x);
}

// A typed array of the given type: its data and length (ByteOffset honoured), or a TypeError naming it.
template <typename E>
E* array_of(Napi::Env env, const Napi::Value& value, napi_typedarray_type type, const std::string& name,
            size_t length) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != type) {
    throw_type_error(env, name + " has the wrong array type");
  }
  const Napi::TypedArray array = value.As<Napi::TypedArray>();
  if (array.ArrayBuffer().IsDetached()) throw_type_error(env, name + " is backed by a detached ArrayBuffer");
  if (array.ElementLength() != length)
    throw_range_error(env, name + " must have " + std::to_string(length) + " elements");
  return reinterpret_cast<E*>(static_cast<uint8_t*>(array.ArrayBuffer().Data()) + array.ByteOffset());
}

Napi::Object job_of(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsObject()) throw_type_error(info.Env(), "job must be an object");
  return info[0].As<Napi::Object>();
}

unsigned threads_of(Napi::Env env, const Napi::Object& job) {
  const double threads = number_of(env, job, "threads", "job");
  if (!(threads >= 1 && threads <= 1024) || std::floor(threads) != threads) {
    throw_range_error(env, "job.threads must be an integer from 1 to 1024");
  }
  return static_cast<unsigned>(threads);
}

bool overlap(const void* a, size_t a_bytes, const void* b, size_t b_bytes) {
  const auto* x = static_cast<const uint8_t*>(a);
  const auto* y = static_cast<const uint8_t*>(b);
  return x < y + b_bytes && y < x + a_bytes;
}

template <typename T>
void apply(const T* weight, const ConvGeometry& g, bool transpose, const double* input, double* output,
           unsigned threads) {
  ConvOperator op(weight, g);
  if (transpose) {
    op.transpose(input, output, threads);
  } else {
    op.forward(input, output, threads);
  }
}

}  // namespace

bool parse_operator(Napi::Env env, const Napi::Value& value, const std::string& name, ConvGeometry* g) {
  if (value.IsUndefined() || value.IsNull()) return false;
  if (!value.IsObject()) throw_type_error(env, name + " must be an object");
  const Napi::Object o = value.As<Napi::Object>();
  if (o.Get("kind").ToString().Utf8Value() != "conv2d") throw_range_error(env, name + ".kind must be 'conv2d'");
  g->cout = count_of(env, o, "outChannels", name, 1);
  g->cin = count_of(env, o, "inChannels", name, 1);
  g->kh = count_of(env, o, "kernelHeight", name, 1);
  g->kw = count_of(env, o, "kernelWidth", name, 1);
  g->h = count_of(env, o, "inputHeight", name, 1);
  g->w = count_of(env, o, "inputWidth", name, 1);
  g->oh = count_of(env, o, "outputHeight", name, 1);
  g->ow = count_of(env, o, "outputWidth", name, 1);
  g->sh = count_of(env, o, "strideHeight", name, 1);
  g->sw = count_of(env, o, "strideWidth", name, 1);
  g->ph = count_of(env, o, "paddingHeight", name, 0);
  g->pw = count_of(env, o, "paddingWidth", name, 0);
  g->circular = o.Get("circular").ToBoolean();
  const std::string layout = o.Get("layout").ToString().Utf8Value();
  if (layout != "oihw" && layout != "hwio") throw_range_error(env, name + ".layout must be 'oihw' or 'hwio'");
  g->layout = layout == "oihw" ? KernelLayout::kOihw : KernelLayout::kHwio;
  if (!g->valid()) throw_range_error(env, name + " is not a consistent convolution (sizes, stride, padding)");
  // The buffers of the operator and of the spectrum are indexed in size_t; keep every product far from overflow.
  const double elements = double(g->cout) * double(g->cin) * double(g->kh) * double(g->kw);
  if (elements > 2147483647.0 || double(g->input_size()) > 2147483647.0 || double(g->output_size()) > 2147483647.0) {
    throw_range_error(env, name + " is too large");
  }
  return true;
}

Napi::Value ConvApply(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const Napi::Object job = job_of(info);
  ConvGeometry g;
  if (!parse_operator(env, job.Get("operator"), "job.operator", &g)) throw_type_error(env, "job.operator is required");
  const bool transpose = job.Get("transpose").ToBoolean();
  const size_t in_length = transpose ? g.output_size() : g.input_size();
  const size_t out_length = transpose ? g.input_size() : g.output_size();
  const double* input = array_of<double>(env, job.Get("input"), napi_float64_array, "job.input", in_length);
  double* output = array_of<double>(env, job.Get("output"), napi_float64_array, "job.output", out_length);
  if (overlap(input, in_length * 8, output, out_length * 8)) throw_range_error(env, "job.output overlaps job.input");
  const unsigned threads = threads_of(env, job);
  const Napi::Value weight = job.Get("weight");
  try {
    if (weight.IsTypedArray() && weight.As<Napi::TypedArray>().TypedArrayType() == napi_float32_array) {
      apply(array_of<float>(env, weight, napi_float32_array, "job.weight", g.kernel_size()), g, transpose, input,
            output, threads);
    } else {
      apply(array_of<double>(env, weight, napi_float64_array, "job.weight", g.kernel_size()), g, transpose, input,
            output, threads);
    }
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception&) {
    throw js_error(env, job_failure());
  }
  return env.Undefined();
}

Napi::Value ConvSpectrum(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const Napi::Object job = job_of(info);
  SpectrumJob s;
  if (!parse_operator(env, job.Get("operator"), "job.operator", &s.geometry))
    throw_type_error(env, "job.operator is required");
  const ConvGeometry& g = s.geometry;
  s.kernel = array_of<double>(env, job.Get("weight"), napi_float64_array, "job.weight", g.kernel_size());
  s.rows.grid = count_of(env, job, "gridHeight", "job", 1);
  s.cols.grid = count_of(env, job, "gridWidth", "job", 1);
  s.rows.phases = count_of(env, job, "phasesHeight", "job", 1);
  s.cols.phases = count_of(env, job, "phasesWidth", "job", 1);
  s.rows.taps = array_of<int32_t>(env, job.Get("rowTaps"), napi_int32_array, "job.rowTaps", 2 * g.kh);
  s.cols.taps = array_of<int32_t>(env, job.Get("colTaps"), napi_int32_array, "job.colTaps", 2 * g.kw);
  for (const CirculantAxis* axis : {&s.rows, &s.cols}) {
    const size_t taps = axis == &s.rows ? g.kh : g.kw;
    for (size_t a = 0; a < taps; ++a) {
      if (axis->taps[2 * a] < 0 || size_t(axis->taps[2 * a]) >= axis->phases) {
        throw_range_error(env, "job.rowTaps and job.colTaps must name phases below phasesHeight and phasesWidth");
      }
    }
  }
  const double width = double(g.cin) * double(s.rows.phases) * double(s.cols.phases);
  if (width * double(g.cout) > 2147483647.0 || double(s.rows.grid) * double(s.cols.grid) > 2147483647.0) {
    throw_range_error(env, "job is too large: the circulant's blocks or grid exceed 2^31 - 1 elements");
  }
  s.threads = threads_of(env, job);
  s.vector = array_of<double>(env, job.Get("vector"), napi_float64_array, "job.vector", g.input_size());
  SpectrumResult r;
  try {
    r = conv_spectrum(s);
  } catch (const std::range_error& e) {
    throw_range_error(env, e.what());
  } catch (const std::exception&) {
    throw js_error(env, job_failure());
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("upper", r.upper);
  result.Set("estimate", r.estimate);
  result.Set("frequencies", double(r.frequencies));
  result.Set("refined", double(r.refined));
  return result;
}

}  // namespace sn::binding
