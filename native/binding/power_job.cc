#include "power_job.h"

#include <cmath>

#include "conv_job.h"
#include "cuda_users.h"
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
  // Raw Node-API, one info call (it fails on anything but a typed array): node-addon-api's TypedArrayOf asks V8 for
  // the same facts three or four times.
  napi_typedarray_type actual;
  size_t length = 0;
  void* data = nullptr;
  napi_value buffer;
  if (napi_get_typedarray_info(env, value, &actual, &length, &data, &buffer, nullptr) != napi_ok || actual != type) {
    throw_type_error(env, name() + " has the wrong array type");
  }
  // A detached buffer reads as empty, with no data: only then is it worth asking.
  bool detached = false;
  if (data == nullptr && (napi_is_detached_arraybuffer(env, buffer, &detached) != napi_ok || detached)) {
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
    const View<E> view = typed_array<E>(
        env, value, type, [&] { return name; }, arrays);
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

// A number, or -1 when the value is not a number.
double number_or_negative(Napi::Env env, const Napi::Value& value) {
  double x = -1;
  return napi_get_value_double(env, value, &x) == napi_ok ? x : -1;
}

// owner() names the object for an error message, made only then.
template <typename Owner>
size_t positive_size(Napi::Env env, double x, const char* key, const Owner& owner) {
  if (!(x >= 1 && x <= 9007199254740991.0) || std::floor(x) != x) {
    throw_range_error(env, owner() + "." + key + " must be a positive safe integer");
  }
  return static_cast<size_t>(x);
}

double number_field(Napi::Env env, const Napi::Object& object, const char* key) {
  double x = 0;
  if (napi_get_value_double(env, object.Get(key), &x) != napi_ok) {
    throw_type_error(env, std::string("job.") + key + " must be a number");
  }
  return x;
}

// A short string field ('float32', 'mixed', ...), or "" when it is not a string.
std::string short_string(Napi::Env env, const Napi::Value& value) {
  char buffer[16];
  size_t length = 0;
  if (napi_get_value_string_utf8(env, value, buffer, sizeof buffer, &length) != napi_ok) return "";
  return std::string(buffer, length);
}

// How errors name layer `index`: made only for a message.
struct LayerName {
  size_t index;
  std::string operator()() const { return "job.layers[" + std::to_string(index) + "]"; }
};

// A layer's matrix geometry: outer × rows × inner, checked for overflow.
struct Geometry {
  MatrixLayout layout;
  size_t cols = 0;
  size_t size = 0;
  bool vector_norm = false;
};

Geometry make_geometry(Napi::Env env, double outer, double rows, double inner, bool vector_norm,
                       const LayerName& name) {
  Geometry g;
  g.layout.outer = positive_size(env, outer, "outer", name);
  g.layout.rows = positive_size(env, rows, "rows", name);
  g.layout.inner = positive_size(env, inner, "inner", name);
  if (__builtin_mul_overflow(g.layout.outer, g.layout.inner, &g.cols) ||
      __builtin_mul_overflow(g.cols, g.layout.rows, &g.size)) {
    throw_range_error(env, name() + " is too large");
  }
  g.vector_norm = vector_norm;
  return g;
}

Geometry parse_geometry(Napi::Env env, const Napi::Object& layer, const LayerName& name) {
  const auto number = [&](const char* key) { return number_or_negative(env, layer.Get(key)); };
  return make_geometry(env, number("outer"), number("rows"), number("inner"), layer.Get("vectorNorm").ToBoolean(),
                       name);
}

// out covers the weight exactly (in place) or not at all, and has its length.
template <typename T>
void check_out(Napi::Env env, const T* out, size_t out_length, const T* weight, size_t size, const LayerName& name) {
  if (out_length != size) throw_range_error(env, name() + ".out has the wrong length");
  const bool disjoint = out + size <= weight || weight + size <= out;
  if (out != weight && !disjoint) throw_range_error(env, name() + ".out partially overlaps the weight");
}

void check_vectors(Napi::Env env, size_t u_length, size_t v_length, const Geometry& g, const LayerName& name) {
  if (!g.vector_norm && (u_length != g.layout.rows || v_length != g.cols)) {
    throw_range_error(env, name() + ".u or .v has the wrong length");
  }
}

// Whether an optional field (out) is present.
bool present(Napi::Env env, const Napi::Value& value) {
  napi_valuetype type = napi_undefined;
  napi_typeof(env, value, &type);
  return type != napi_null && type != napi_undefined;
}

// A host layer from its geometry, its four arrays (out may be null or undefined) and its convolution operator (null or
// undefined for a matrix; a packed job has none: lib/backends.ts sends operator layers unpacked).
template <typename T>
LayerBuffers<T> host_layer(Napi::Env env, const Geometry& g, const LayerName& name, napi_typedarray_type type,
                           const Napi::Value& weight_value, const Napi::Value& out_value, const Napi::Value& u_value,
                           const Napi::Value& v_value, const Napi::Value& operator_value,
                           std::vector<Napi::Object>* arrays) {
  LayerBuffers<T> b;
  b.layout = g.layout;
  b.vector_norm = g.vector_norm;
  b.is_conv = parse_operator(env, operator_value, name() + ".operator", &b.conv);
  if (b.is_conv && (g.vector_norm || g.layout.outer != 1 || g.layout.rows != b.conv.output_size() ||
                    g.layout.inner != b.conv.input_size())) {
    throw_range_error(env, name() + " does not match its operator's input and output sizes");
  }
  const size_t size = b.weight_size();

  const View<T> weight = typed_array<T>(
      env, weight_value, type, [&] { return name() + ".weight"; }, arrays);
  if (weight.length != size) throw_range_error(env, name() + ".weight has the wrong length");
  b.weight = weight.data;

  if (present(env, out_value)) {
    const View<T> o = typed_array<T>(
        env, out_value, type, [&] { return name() + ".out"; }, arrays);
    check_out(env, o.data, o.length, weight.data, size, name);
    b.out = o.data;
  }

  const View<T> u = typed_array<T>(
      env, u_value, type, [&] { return name() + ".u"; }, arrays);
  const View<T> v = typed_array<T>(
      env, v_value, type, [&] { return name() + ".v"; }, arrays);
  check_vectors(env, u.length, v.length, g, name);
  b.u = u.data;
  b.v = v.data;
  return b;
}

template <typename T>
LayerBuffers<T> parse_layer(Napi::Env env, const Napi::Object& layer, size_t index, napi_typedarray_type type,
                            std::vector<Napi::Object>* arrays) {
  const LayerName name{index};
  return host_layer<T>(env, parse_geometry(env, layer, name), name, type, layer.Get("weight"), layer.Get("out"),
                       layer.Get("u"), layer.Get("v"), layer.Get("operator"), arrays);
}

// A layer of a CUDA job: host arrays or device slices, not a mix.
template <typename T>
cuda::CudaLayerBuffers<T> parse_cuda_layer(Napi::Env env, const Napi::Object& layer, size_t index,
                                           napi_typedarray_type type, std::vector<Napi::Object>* arrays, int device) {
  const LayerName layer_name{index};
  const std::string name = layer_name();
  const Geometry g = parse_geometry(env, layer, layer_name);
  if (present(env, layer.Get("operator"))) {
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
    if (f.on_device != b.on_device)
      throw_type_error(env, name + "." + key + " must be where the weight is (host or device)");
  };
  const Napi::Value out = layer.Get("out");
  if (present(env, out)) {
    const Field<T> o = field<T>(env, out, type, name + ".out", arrays, device);
    same_place(o, "out");
    check_out(env, o.data, o.length, weight.data, g.size, layer_name);
    b.out = o.data;
  }
  const Field<T> u = field<T>(env, layer.Get("u"), type, name + ".u", arrays, device);
  const Field<T> v = field<T>(env, layer.Get("v"), type, name + ".v", arrays, device);
  same_place(u, "u");
  same_place(v, "v");
  check_vectors(env, u.length, v.length, g, layer_name);
  b.u = u.data;
  b.v = v.data;
  return b;
}

template <typename E>
E* result_array(Napi::Env env, const Napi::Value& value, const char* key, napi_typedarray_type type, size_t count,
                std::vector<Napi::Object>* arrays) {
  auto name = [&] { return std::string("job.") + key; };
  const View<E> view = typed_array<E>(env, value, type, name, arrays);
  if (view.length != count) throw_range_error(env, name() + " must have one entry per layer");
  return view.data;
}

}  // namespace

PowerJob PowerJob::FromJs(const Napi::Object& job, std::vector<Napi::Object>* arrays) {
  const Napi::Env env = job.Env();
  PowerJob p;
  const std::string dtype = short_string(env, job.Get("dtype"));
  if (dtype != "float32" && dtype != "float64") throw_type_error(env, "job.dtype must be 'float32' or 'float64'");
  p.f64_ = dtype == "float64";

  const Napi::Value device = job.Get("device");
  if (present(env, device)) {
    const double d = number_or_negative(env, device);
    if (!(d >= 0 && d <= 1023) || std::floor(d) != d)
      throw_range_error(env, "job.device must be an integer from 0 to 1023");
    p.device_ = static_cast<int>(d);
    ensure_cuda_user(env);
  }

  const Napi::Value layers_value = job.Get("layers");
  if (!layers_value.IsArray()) throw_type_error(env, "job.layers must be an array");
  const Napi::Array layers = layers_value.As<Napi::Array>();
  p.count_ = layers.Length();
  arrays->reserve(arrays->size() + 4 + 4 * p.count_);
  for (uint32_t i = 0; i < p.count_; ++i) {
    const Napi::Value layer = layers.Get(i);
    if (!layer.IsObject()) throw_type_error(env, "job.layers[" + std::to_string(i) + "] must be an object");
    const Napi::Object object = layer.As<Napi::Object>();
    if (p.device_ >= 0) {
      if (p.f64_) {
        p.f64_cuda_layers_.push_back(parse_cuda_layer<double>(env, object, i, napi_float64_array, arrays, p.device_));
      } else {
        p.f32_cuda_layers_.push_back(parse_cuda_layer<float>(env, object, i, napi_float32_array, arrays, p.device_));
      }
    } else if (p.f64_) {
      p.f64_layers_.push_back(parse_layer<double>(env, object, i, napi_float64_array, arrays));
    } else {
      p.f32_layers_.push_back(parse_layer<float>(env, object, i, napi_float32_array, arrays));
    }
  }

  p.SetOptions(env, number_field(env, job, "iterations"), number_field(env, job, "tolerance"),
               number_field(env, job, "eps"), job.Get("legacy").ToBoolean(), number_field(env, job, "threads"));
  const Napi::Value precision_value = job.Get("precision");
  const std::string precision = short_string(env, precision_value);
  if (precision == "mixed") {
    p.options_.precision = Precision::kMixed;
  } else if (precision == "float64") {
    p.options_.precision = Precision::kFloat64;
  } else {
    const std::string got = precision_value.ToString().Utf8Value();
    throw_range_error(env, "job.precision must be 'mixed' or 'float64', got '" + got + "'");
  }
  p.SetResults(env, job.Get("sigma"), job.Get("status"), job.Get("iterationsRun"), job.Get("converged"), arrays);
  return p;
}

PowerJob PowerJob::FromPacked(const Napi::Object& job, std::vector<Napi::Object>* arrays) {
  const Napi::Env env = job.Env();
  PowerJob p;
  std::vector<Napi::Object> unpinned;  // the header is read now, not pinned
  const View<double> header = typed_array<double>(
      env, job.Get("header"), napi_float64_array, [] { return std::string("job.header"); }, &unpinned);
  const double* h = header.data;
  constexpr size_t kFixed = 8, kPerLayer = 4;
  if (header.length < kFixed) throw_range_error(env, "job.header is too short");
  if (h[0] != 0 && h[0] != 1) throw_type_error(env, "job.header[0] (dtype) must be 0 or 1");
  p.f64_ = h[0] == 1;
  p.SetOptions(env, h[1], h[2], h[3], h[4] != 0, h[5]);
  if (h[6] != 0 && h[6] != 1) throw_range_error(env, "job.header[6] (precision) must be 0 or 1");
  p.options_.precision = h[6] == 0 ? Precision::kMixed : Precision::kFloat64;
  const double count = h[7];
  if (!(count >= 0 && count <= 1e9) || std::floor(count) != count || header.length < kFixed + kPerLayer * count) {
    throw_range_error(env, "job.header must hold 8 numbers and 4 per layer");  // more are ignored
  }
  p.count_ = static_cast<size_t>(count);

  const Napi::Value list_value = job.Get("arrays");
  if (!list_value.IsArray()) throw_type_error(env, "job.arrays must be an array");
  const Napi::Array list = list_value.As<Napi::Array>();
  if (list.Length() != 4 + 4 * p.count_) throw_range_error(env, "job.arrays must hold 4 arrays and 4 per layer");
  arrays->reserve(arrays->size() + list.Length());
  p.SetResults(env, list.Get(0u), list.Get(1u), list.Get(2u), list.Get(3u), arrays);
  const napi_typedarray_type type = p.f64_ ? napi_float64_array : napi_float32_array;
  for (uint32_t i = 0; i < p.count_; ++i) {
    const LayerName name{i};
    const double* g = h + kFixed + kPerLayer * i;
    const Geometry geometry = make_geometry(env, g[0], g[1], g[2], g[3] != 0, name);
    const uint32_t a = 4 + 4 * i;
    if (p.f64_) {
      p.f64_layers_.push_back(host_layer<double>(env, geometry, name, type, list.Get(a), list.Get(a + 1),
                                                 list.Get(a + 2), list.Get(a + 3), env.Undefined(), arrays));
    } else {
      p.f32_layers_.push_back(host_layer<float>(env, geometry, name, type, list.Get(a), list.Get(a + 1),
                                                list.Get(a + 2), list.Get(a + 3), env.Undefined(), arrays));
    }
  }
  return p;
}

void PowerJob::SetOptions(Napi::Env env, double iterations, double tolerance, double eps, bool legacy, double threads) {
  if (!(iterations >= 0 && iterations <= 2147483647.0) || std::floor(iterations) != iterations) {
    throw_range_error(env, "job.iterations must be an integer from 0 to 2^31 - 1");
  }
  options_.iterations = static_cast<int32_t>(iterations);
  options_.tolerance = tolerance;
  if (std::isnan(tolerance)) throw_range_error(env, "job.tolerance must not be NaN");
  if (tolerance >= 0 && options_.iterations < 1) {
    throw_range_error(env, "job.iterations must be at least 1 when job.tolerance is set");
  }
  options_.eps = eps;
  if (!(eps >= 0 && std::isfinite(eps))) throw_range_error(env, "job.eps must be a finite number >= 0");
  options_.legacy = legacy;
  if (!(threads >= 1 && threads <= 1024) || std::floor(threads) != threads) {
    throw_range_error(env, "job.threads must be an integer from 1 to 1024");
  }
  options_.threads = static_cast<unsigned>(threads);
}

void PowerJob::SetResults(Napi::Env env, const Napi::Value& sigma, const Napi::Value& status,
                          const Napi::Value& iterations_run, const Napi::Value& converged,
                          std::vector<Napi::Object>* arrays) {
  sigma_ = result_array<double>(env, sigma, "sigma", napi_float64_array, count_, arrays);
  status_ = result_array<int32_t>(env, status, "status", napi_int32_array, count_, arrays);
  iterations_run_ = result_array<int32_t>(env, iterations_run, "iterationsRun", napi_int32_array, count_, arrays);
  converged_ = result_array<uint8_t>(env, converged, "converged", napi_uint8_array, count_, arrays);
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
