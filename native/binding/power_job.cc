#include "power_job.h"

#include <cmath>

#include "conv_job.h"
#include "device_array.h"
#include "errors.h"

namespace sn::binding {
namespace {

// A typed array's element pointer and length, after checking its element type. ByteOffset is honoured by
// TypedArrayOf::Data(); nothing here assumes alignment beyond the element's.
template <typename E>
struct View {
  E* data = nullptr;
  size_t length = 0;
};

// name() makes the argument's name for an error message: only then, which spares a string per array per call.
template <typename E, typename Name>
View<E> typed_array(Napi::Env env, const Napi::Value& value, napi_typedarray_type type, const Name& name,
                    std::vector<Napi::Object>* arrays) {
  // Raw Node-API, one info call: node-addon-api's TypedArrayOf asks V8 for the same facts three or four times.
  bool is_typed_array = false;
  napi_typedarray_type actual;
  size_t length = 0;
  void* data = nullptr;
  napi_value buffer;
  if (napi_is_typedarray(env, value, &is_typed_array) != napi_ok || !is_typed_array ||
      napi_get_typedarray_info(env, value, &actual, &length, &data, &buffer, nullptr) != napi_ok || actual != type) {
    throw_type_error(env, name() + " has the wrong array type");
  }
  bool detached = false;
  if (napi_is_detached_arraybuffer(env, buffer, &detached) != napi_ok || detached) {
    throw_type_error(env, name() + " is backed by a detached ArrayBuffer");
  }
  arrays->push_back(value.As<Napi::Object>());
  return {static_cast<E*>(data), length};  // data already points at the view's first element (its byte offset)
}

// A field that is a typed array, or, in a job for a CUDA device, a slice { array: DeviceArray, offset, length } of
// device memory.
template <typename E>
struct Field {
  E* data = nullptr;
  size_t length = 0;
  bool on_device = false;
};

template <typename E>
Field<E> field(Napi::Env env, const Napi::Value& value, napi_typedarray_type type, const std::string& name,
               std::vector<Napi::Object>* arrays, int device) {
  if (value.IsTypedArray() || device < 0) {
    const View<E> view = typed_array<E>(env, value, type, [&] { return name; }, arrays);
    return {view.data, view.length, false};
  }
  if (!value.IsObject()) throw_type_error(env, name + " must be a typed array or a device slice");
  const Napi::Object slice = value.As<Napi::Object>();
  DeviceArray* array = DeviceArray::From(env, slice.Get("array"));
  if (array == nullptr) throw_type_error(env, name + ".array must be a DeviceArray");
  if (array->f64() != (type == napi_float64_array)) throw_type_error(env, name + " has the wrong dtype");
  if (array->device() != device) throw_range_error(env, name + " lives on another CUDA device");
  const Napi::Value o = slice.Get("offset"), l = slice.Get("length");
  const double offset = o.IsNumber() ? o.As<Napi::Number>().DoubleValue() : -1;
  const double length = l.IsNumber() ? l.As<Napi::Number>().DoubleValue() : -1;
  if (!(offset >= 0 && length >= 0 && offset + length <= static_cast<double>(array->length())) ||
      std::floor(offset) != offset || std::floor(length) != length) {
    throw_range_error(env, name + " is not a range of its DeviceArray");
  }
  arrays->push_back(slice.Get("array").As<Napi::Object>());
  E* base = static_cast<E*>(array->data(env, name));
  return {base + static_cast<size_t>(offset), static_cast<size_t>(length), true};
}

size_t size_field(Napi::Env env, const Napi::Object& object, const char* key, const std::string& owner) {
  const Napi::Value value = object.Get(key);
  const double x = value.IsNumber() ? value.As<Napi::Number>().DoubleValue() : -1;
  if (!(x >= 1 && x <= 9007199254740991.0) || std::floor(x) != x) {
    throw_range_error(env, owner + "." + key + " must be a positive safe integer");
  }
  return static_cast<size_t>(x);
}

double number_field(Napi::Env env, const Napi::Object& object, const char* key) {
  const Napi::Value value = object.Get(key);
  if (!value.IsNumber()) throw_type_error(env, std::string("job.") + key + " must be a number");
  return value.As<Napi::Number>().DoubleValue();
}

// A layer's matrix geometry: outer × rows × inner, checked for overflow.
struct Geometry {
  MatrixLayout layout;
  size_t cols = 0;
  size_t size = 0;
  bool vector_norm = false;
};

Geometry parse_geometry(Napi::Env env, const Napi::Object& layer, const std::string& name) {
  Geometry g;
  g.layout.outer = size_field(env, layer, "outer", name);
  g.layout.rows = size_field(env, layer, "rows", name);
  g.layout.inner = size_field(env, layer, "inner", name);
  if (__builtin_mul_overflow(g.layout.outer, g.layout.inner, &g.cols) ||
      __builtin_mul_overflow(g.cols, g.layout.rows, &g.size)) {
    throw_range_error(env, name + " is too large");
  }
  g.vector_norm = layer.Get("vectorNorm").ToBoolean();
  return g;
}

// out covers the weight exactly (in place) or not at all, and has its length.
template <typename T>
void check_out(Napi::Env env, const T* out, size_t out_length, const T* weight, size_t size, const std::string& name) {
  if (out_length != size) throw_range_error(env, name + ".out has the wrong length");
  const bool disjoint = out + size <= weight || weight + size <= out;
  if (out != weight && !disjoint) throw_range_error(env, name + ".out partially overlaps the weight");
}

void check_vectors(Napi::Env env, size_t u_length, size_t v_length, const Geometry& g, const std::string& name) {
  if (!g.vector_norm && (u_length != g.layout.rows || v_length != g.cols)) {
    throw_range_error(env, name + ".u or .v has the wrong length");
  }
}

template <typename T>
LayerBuffers<T> parse_layer(Napi::Env env, const Napi::Object& layer, size_t index, napi_typedarray_type type,
                            std::vector<Napi::Object>* arrays) {
  const std::string name = "job.layers[" + std::to_string(index) + "]";
  const Geometry g = parse_geometry(env, layer, name);
  LayerBuffers<T> b;
  b.layout = g.layout;
  b.vector_norm = g.vector_norm;
  b.is_conv = parse_operator(env, layer.Get("operator"), name + ".operator", &b.conv);
  if (b.is_conv && (g.vector_norm || g.layout.outer != 1 || g.layout.rows != b.conv.output_size() ||
                    g.layout.inner != b.conv.input_size())) {
    throw_range_error(env, name + " does not match its operator's input and output sizes");
  }
  const size_t size = b.weight_size();

  const View<T> weight = typed_array<T>(env, layer.Get("weight"), type, [&] { return name + ".weight"; }, arrays);
  if (weight.length != size) throw_range_error(env, name + ".weight has the wrong length");
  b.weight = weight.data;

  const Napi::Value out = layer.Get("out");
  if (!out.IsNull() && !out.IsUndefined()) {
    const View<T> o = typed_array<T>(env, out, type, [&] { return name + ".out"; }, arrays);
    check_out(env, o.data, o.length, weight.data, size, name);
    b.out = o.data;
  }

  const View<T> u = typed_array<T>(env, layer.Get("u"), type, [&] { return name + ".u"; }, arrays);
  const View<T> v = typed_array<T>(env, layer.Get("v"), type, [&] { return name + ".v"; }, arrays);
  check_vectors(env, u.length, v.length, g, name);
  b.u = u.data;
  b.v = v.data;
  return b;
}

// A layer of a CUDA job: host arrays or device slices, not a mix.
template <typename T>
cuda::CudaLayerBuffers<T> parse_cuda_layer(Napi::Env env, const Napi::Object& layer, size_t index,
                                           napi_typedarray_type type, std::vector<Napi::Object>* arrays, int device) {
  const std::string name = "job.layers[" + std::to_string(index) + "]";
  const Geometry g = parse_geometry(env, layer, name);
  const Napi::Value op = layer.Get("operator");
  if (!op.IsUndefined() && !op.IsNull()) {
    throw_range_error(env, name + ".operator: the cuda backend does not run convolution operators yet");
  }
  cuda::CudaLayerBuffers<T> b;
  b.layout = g.layout;
  b.vector_norm = g.vector_norm;
  const Field<T> weight = field<T>(env, layer.Get("weight"), type, name + ".weight", arrays, device);
  if (weight.length != g.size) throw_range_error(env, name + ".weight has the wrong length");
  b.weight = weight.data;
  b.on_device = weight.on_device;
  auto same_place = [&](const Field<T>& f, const char* key) {
    if (f.on_device != b.on_device) throw_type_error(env, name + "." + key + " must be where the weight is (host or device)");
  };
  const Napi::Value out = layer.Get("out");
  if (!out.IsNull() && !out.IsUndefined()) {
    const Field<T> o = field<T>(env, out, type, name + ".out", arrays, device);
    same_place(o, "out");
    check_out(env, o.data, o.length, weight.data, g.size, name);
    b.out = o.data;
  }
  const Field<T> u = field<T>(env, layer.Get("u"), type, name + ".u", arrays, device);
  const Field<T> v = field<T>(env, layer.Get("v"), type, name + ".v", arrays, device);
  same_place(u, "u");
  same_place(v, "v");
  check_vectors(env, u.length, v.length, g, name);
  b.u = u.data;
  b.v = v.data;
  return b;
}

template <typename E>
E* result_array(Napi::Env env, const Napi::Object& job, const char* key, napi_typedarray_type type, size_t count,
                std::vector<Napi::Object>* arrays) {
  auto name = [&] { return std::string("job.") + key; };
  const View<E> view = typed_array<E>(env, job.Get(key), type, name, arrays);
  if (view.length != count) throw_range_error(env, name() + " must have one entry per layer");
  return view.data;
}

}  // namespace

PowerJob PowerJob::FromJs(const Napi::Object& job, std::vector<Napi::Object>* arrays) {
  const Napi::Env env = job.Env();
  PowerJob p;
  const std::string dtype = job.Get("dtype").ToString().Utf8Value();
  if (dtype != "float32" && dtype != "float64") throw_type_error(env, "job.dtype must be 'float32' or 'float64'");
  p.f64_ = dtype == "float64";

  const Napi::Value device = job.Get("device");
  if (!device.IsUndefined() && !device.IsNull()) {
    const double d = device.IsNumber() ? device.As<Napi::Number>().DoubleValue() : -1;
    if (!(d >= 0 && d <= 1023) || std::floor(d) != d) throw_range_error(env, "job.device must be an integer from 0 to 1023");
    p.device_ = static_cast<int>(d);
  }

  const Napi::Value layers_value = job.Get("layers");
  if (!layers_value.IsArray()) throw_type_error(env, "job.layers must be an array");
  const Napi::Array layers = layers_value.As<Napi::Array>();
  p.count_ = layers.Length();
  for (uint32_t i = 0; i < p.count_; ++i) {
    const Napi::Value layer = layers.Get(i);
    if (!layer.IsObject()) throw_type_error(env, "job.layers[" + std::to_string(i) + "] must be an object");
    if (p.device_ >= 0) {
      if (p.f64_) {
        p.f64_cuda_layers_.push_back(
            parse_cuda_layer<double>(env, layer.As<Napi::Object>(), i, napi_float64_array, arrays, p.device_));
      } else {
        p.f32_cuda_layers_.push_back(
            parse_cuda_layer<float>(env, layer.As<Napi::Object>(), i, napi_float32_array, arrays, p.device_));
      }
    } else if (p.f64_) {
      p.f64_layers_.push_back(parse_layer<double>(env, layer.As<Napi::Object>(), i, napi_float64_array, arrays));
    } else {
      p.f32_layers_.push_back(parse_layer<float>(env, layer.As<Napi::Object>(), i, napi_float32_array, arrays));
    }
  }

  const double iterations = number_field(env, job, "iterations");
  if (!(iterations >= 0 && iterations <= 2147483647.0) || std::floor(iterations) != iterations) {
    throw_range_error(env, "job.iterations must be an integer from 0 to 2^31 - 1");
  }
  p.options_.iterations = static_cast<int32_t>(iterations);
  p.options_.tolerance = number_field(env, job, "tolerance");
  if (std::isnan(p.options_.tolerance)) throw_range_error(env, "job.tolerance must not be NaN");
  if (p.options_.tolerance >= 0 && p.options_.iterations < 1) {
    throw_range_error(env, "job.iterations must be at least 1 when job.tolerance is set");
  }
  p.options_.eps = number_field(env, job, "eps");
  if (!(p.options_.eps >= 0 && std::isfinite(p.options_.eps))) {
    throw_range_error(env, "job.eps must be a finite number >= 0");
  }
  p.options_.legacy = job.Get("legacy").ToBoolean();
  const double threads = number_field(env, job, "threads");
  if (!(threads >= 1 && threads <= 1024) || std::floor(threads) != threads) {
    throw_range_error(env, "job.threads must be an integer from 1 to 1024");
  }
  p.options_.threads = static_cast<unsigned>(threads);
  const std::string precision = job.Get("precision").ToString().Utf8Value();
  if (precision == "mixed") {
    p.options_.precision = Precision::kMixed;
  } else if (precision == "float64") {
    p.options_.precision = Precision::kFloat64;
  } else {
    throw_range_error(env, "job.precision must be 'mixed' or 'float64', got '" + precision + "'");
  }

  p.sigma_ = result_array<double>(env, job, "sigma", napi_float64_array, p.count_, arrays);
  p.status_ = result_array<int32_t>(env, job, "status", napi_int32_array, p.count_, arrays);
  p.iterations_run_ = result_array<int32_t>(env, job, "iterationsRun", napi_int32_array, p.count_, arrays);
  p.converged_ = result_array<uint8_t>(env, job, "converged", napi_uint8_array, p.count_, arrays);
  return p;
}

void PowerJob::Execute() {
  std::vector<LayerResult> results;
  if (device_ >= 0) {
    all_finite_ = f64_ ? cuda::run_power_batch_cuda<double>(device_, f64_cuda_layers_, options_, results)
                       : cuda::run_power_batch_cuda<float>(device_, f32_cuda_layers_, options_, results);
  } else {
    all_finite_ = f64_ ? run_power_batch<double>(f64_layers_, options_, results)
                       : run_power_batch<float>(f32_layers_, options_, results);
  }
  for (size_t i = 0; i < count_; ++i) {
    sigma_[i] = results[i].sigma;
    status_[i] = static_cast<int32_t>(results[i].status);
    iterations_run_[i] = results[i].iterations_run;
    converged_[i] = results[i].converged ? 1 : 0;
  }
}

}  // namespace sn::binding
