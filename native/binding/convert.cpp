#include "binding/convert.h"

#include <cmath>

namespace rt::js {

namespace {

Napi::TypeError type_error(Napi::Env env, const std::string& message) { return Napi::TypeError::New(env, message); }

}  // namespace

std::vector<int64_t> shape_from_js(const Napi::Value& value, const char* what) {
  Napi::Env env = value.Env();
  if (!value.IsArray()) throw type_error(env, std::string(what) + " must be an array of integers");
  Napi::Array array = value.As<Napi::Array>();
  std::vector<int64_t> shape;
  for (uint32_t i = 0; i < array.Length(); ++i) {
    Napi::Value v = array[i];
    if (!v.IsNumber()) throw type_error(env, std::string(what) + " must be an array of integers");
    const double d = v.As<Napi::Number>().DoubleValue();
    if (d < 0 || d != std::floor(d) || d > 9.0e15)
      throw type_error(env, std::string(what) + " must hold non-negative integers");
    shape.push_back(static_cast<int64_t>(d));
  }
  return shape;
}

Napi::Array shape_to_js(Napi::Env env, c10::IntArrayRef shape) {
  Napi::Array out = Napi::Array::New(env, shape.size());
  for (size_t i = 0; i < shape.size(); ++i)
    out.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(shape[i])));
  return out;
}

std::vector<std::string> strings_from_js(const Napi::Value& value, const char* what) {
  if (!value.IsArray()) throw type_error(value.Env(), std::string(what) + " must be an array of strings");
  Napi::Array array = value.As<Napi::Array>();
  std::vector<std::string> out;
  for (uint32_t i = 0; i < array.Length(); ++i) {
    Napi::Value v = array[i];
    if (!v.IsString()) throw type_error(value.Env(), std::string(what) + " must be an array of strings");
    out.push_back(v.As<Napi::String>().Utf8Value());
  }
  return out;
}

torch::Tensor view_of(const Napi::Value& value, const std::vector<int64_t>& shape, const char* what) {
  Napi::Env env = value.Env();
  if (!value.IsTypedArray()) throw type_error(env, std::string(what) + " must be a typed array");
  Napi::TypedArray array = value.As<Napi::TypedArray>();
  torch::ScalarType type;
  switch (array.TypedArrayType()) {
    case napi_float32_array:
      type = torch::kFloat32;
      break;
    case napi_float64_array:
      type = torch::kFloat64;
      break;
    case napi_uint8_array:
      type = torch::kUInt8;
      break;
    case napi_int32_array:
      type = torch::kInt32;
      break;
    case napi_bigint64_array:
      type = torch::kInt64;
      break;
    default:
      throw type_error(env, std::string(what) + ": unsupported typed array type");
  }
  int64_t count = 1;
  for (int64_t d : shape) count *= d;
  if (static_cast<int64_t>(array.ElementLength()) != count)
    throw type_error(env, std::string(what) + " holds " + std::to_string(array.ElementLength()) +
                              " values, its shape needs " + std::to_string(count));
  auto* data = static_cast<uint8_t*>(array.ArrayBuffer().Data()) + array.ByteOffset();
  return torch::from_blob(data, shape, torch::TensorOptions().dtype(type));
}

std::string dtype_name(torch::ScalarType type) {
  switch (type) {
    case torch::kFloat32:
      return "float32";
    case torch::kFloat64:
      return "float64";
    case torch::kFloat16:
      return "float16";
    case torch::kBFloat16:
      return "bfloat16";
    case torch::kInt64:
      return "int64";
    case torch::kInt32:
      return "int32";
    case torch::kUInt8:
      return "uint8";
    case torch::kBool:
      return "bool";
    default:
      return c10::toString(type);
  }
}

Napi::Value typed_array_of(Napi::Env env, torch::Tensor tensor) {
  tensor = tensor.to(torch::kCPU).contiguous();
  if (tensor.scalar_type() == torch::kFloat16 || tensor.scalar_type() == torch::kBFloat16 ||
      tensor.scalar_type() == torch::kBool)
    tensor = tensor.to(tensor.scalar_type() == torch::kBool ? torch::kUInt8 : torch::kFloat32);
  const size_t bytes = tensor.numel() * tensor.element_size();
  const size_t count = static_cast<size_t>(tensor.numel());
  Napi::ArrayBuffer buffer;
  if (bytes == 0) {
    buffer = Napi::ArrayBuffer::New(env, 0);
  } else {
    auto* keep = new torch::Tensor(tensor);
    buffer = Napi::ArrayBuffer::New(
        env, keep->data_ptr(), bytes, [](Napi::Env, void*, torch::Tensor* t) { delete t; }, keep);
  }
  switch (tensor.scalar_type()) {
    case torch::kFloat32:
      return Napi::Float32Array::New(env, count, buffer, 0);
    case torch::kFloat64:
      return Napi::Float64Array::New(env, count, buffer, 0);
    case torch::kInt64:
      return Napi::BigInt64Array::New(env, count, buffer, 0);
    case torch::kInt32:
      return Napi::Int32Array::New(env, count, buffer, 0);
    case torch::kUInt8:
      return Napi::Uint8Array::New(env, count, buffer, 0);
    default:
      throw Napi::Error::New(env, "cannot hand a " + dtype_name(tensor.scalar_type()) + " tensor to JS");
  }
}

Napi::Object tensor_to_js(Napi::Env env, const torch::Tensor& tensor) {
  Napi::Object result = Napi::Object::New(env);
  result.Set("shape", shape_to_js(env, tensor.sizes()));
  result.Set("data", typed_array_of(env, tensor));
  return result;
}

Napi::Array named_tensors_to_js(Napi::Env env, const std::vector<NamedTensor>& tensors) {
  Napi::Array out = Napi::Array::New(env, tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    Napi::Object t = Napi::Object::New(env);
    t.Set("name", tensors[i].name);
    t.Set("dtype", dtype_name(tensors[i].tensor.scalar_type()));
    t.Set("shape", shape_to_js(env, tensors[i].tensor.sizes()));
    t.Set("data", typed_array_of(env, tensors[i].tensor));
    out.Set(static_cast<uint32_t>(i), t);
  }
  return out;
}

std::vector<std::pair<std::string, torch::Tensor>> named_tensors_from_js(const Napi::Value& value,
                                                                         std::vector<Napi::Value>& keep) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  if (value.IsUndefined() || value.IsNull()) return out;
  if (!value.IsArray()) throw Napi::TypeError::New(value.Env(), "expected an array of named tensors");
  Napi::Array array = value.As<Napi::Array>();
  for (uint32_t i = 0; i < array.Length(); ++i) {
    Napi::Object e = array.Get(i).As<Napi::Object>();
    Napi::Value data = e.Get("data");
    keep.push_back(data);
    out.emplace_back(Fields(e, "optimizerState").string("name"),
                     view_of(data, shape_from_js(e.Get("shape"), "shape"), "data").clone());
  }
  return out;
}

NetSpec spec_from_js(const Fields& js) {
  NetSpec s;
  s.block = js.choice<BlockKind>("block", {{"basic", BlockKind::Basic}, {"bottleneck", BlockKind::Bottleneck}});
  s.preact = js.boolean("preact");
  s.shortcut = js.choice<ShortcutKind>(
      "shortcut",
      {{"A", ShortcutKind::A}, {"B", ShortcutKind::B}, {"C", ShortcutKind::C}, {"none", ShortcutKind::None}});
  s.stem = js.choice<StemKind>("stem", {{"imagenet", StemKind::ImageNet}, {"cifar", StemKind::Cifar}});
  s.depths = shape_from_js(js.value("depths"), "depths");
  s.widths = shape_from_js(js.value("widths"), "widths");
  s.in_channels = js.integer("inChannels");
  s.num_classes = js.integer("numClasses");
  s.stride_on_3x3 = js.choice<bool>("stride", {{"conv3x3", true}, {"conv1x1", false}});
  s.groups = js.integer("groups");
  s.width_per_group = js.integer("widthPerGroup");
  s.deep_stem = js.boolean("deepStem");
  s.stem_width = js.integer("stemWidth");
  s.avg_down = js.boolean("avgDown");
  s.squeeze_excite = js.choice<bool>("attention", {{"none", false}, {"se", true}});
  s.drop_path = js.number("dropPath");
  s.shortcut_scale = js.number("shortcutScale");
  s.zero_init_residual = js.boolean("zeroInitResidual");
  s.seed = static_cast<uint64_t>(js.integer("seed"));
  s.float64 = js.choice<bool>("dtype", {{"float32", false}, {"float64", true}});
  return s;
}

Napi::Object graph_to_js(Napi::Env env, const GraphBuilder& graph) {
  Napi::Array nodes = Napi::Array::New(env, graph.nodes().size());
  for (size_t i = 0; i < graph.nodes().size(); ++i) {
    const GraphNode& n = graph.nodes()[i];
    Napi::Object node = Napi::Object::New(env);
    node.Set("op", n.op);
    node.Set("name", n.name);
    Napi::Array inputs = Napi::Array::New(env, n.inputs.size());
    for (size_t k = 0; k < n.inputs.size(); ++k) inputs.Set(static_cast<uint32_t>(k), n.inputs[k]);
    node.Set("inputs", inputs);
    node.Set("output", n.output);
    node.Set("outputShape", shape_to_js(env, n.output_shape));
    Napi::Object ints = Napi::Object::New(env);
    for (const auto& [key, values] : n.int_attrs) ints.Set(key, shape_to_js(env, values));
    node.Set("intAttrs", ints);
    Napi::Object floats = Napi::Object::New(env);
    for (const auto& [key, value] : n.float_attrs) floats.Set(key, value);
    node.Set("floatAttrs", floats);
    node.Set("params", static_cast<double>(n.params));
    node.Set("macs", static_cast<double>(n.macs));
    nodes.Set(static_cast<uint32_t>(i), node);
  }
  Napi::Array constants = Napi::Array::New(env, graph.constants().size());
  for (size_t i = 0; i < graph.constants().size(); ++i) {
    const auto& [name, value] = graph.constants()[i];
    Napi::Object c = Napi::Object::New(env);
    c.Set("name", name);
    c.Set("dtype", dtype_name(value.scalar_type()));
    c.Set("shape", shape_to_js(env, value.sizes()));
    c.Set("data", typed_array_of(env, value));
    constants.Set(static_cast<uint32_t>(i), c);
  }
  Napi::Array weights = Napi::Array::New(env, graph.weights().size());
  for (size_t i = 0; i < graph.weights().size(); ++i) weights.Set(static_cast<uint32_t>(i), graph.weights()[i].first);
  Napi::Object out = Napi::Object::New(env);
  out.Set("input", graph.input());
  out.Set("output", graph.output());
  out.Set("nodes", nodes);
  out.Set("constants", constants);
  out.Set("weights", weights);
  return out;
}

}  // namespace rt::js
