#include "binding/model_wrap.h"

#include "binding/addon_data.h"
#include "binding/args.h"
#include "binding/async.h"
#include "binding/convert.h"
#include "binding/errors.h"
#include "binding/shared_object.h"

namespace rt::js {

Napi::Function ModelWrap::Define(Napi::Env env) {
  return DefineClass(
      env, "Model",
      {InstanceMethod<&ModelWrap::Forward>("forward"), InstanceMethod<&ModelWrap::StateEntries>("stateEntries"),
       InstanceMethod<&ModelWrap::ExportState>("exportState"), InstanceMethod<&ModelWrap::ImportState>("importState"),
       InstanceMethod<&ModelWrap::SetTraining>("setTraining"), InstanceMethod<&ModelWrap::IsTraining>("isTraining"),
       InstanceMethod<&ModelWrap::To>("to"), InstanceMethod<&ModelWrap::Device>("device"),
       InstanceMethod<&ModelWrap::Trace>("trace"), InstanceMethod<&ModelWrap::MinInputSize>("minInputSize"),
       InstanceMethod<&ModelWrap::SetRequiresGrad>("setRequiresGrad"),
       InstanceMethod<&ModelWrap::ReplaceHead>("replaceHead"), InstanceMethod<&ModelWrap::Dispose>("dispose")});
}

ModelWrap::ModelWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModelWrap>(info) {
  if (info[0].IsExternal()) {  // from CreateAsync: the model is already built
    model_ = adopt_shared<Model>(info, "");
    return;
  }
  NetSpec spec = spec_from_js(Fields(Args(info, "Model(spec)").object(0, "spec"), "spec"));
  model_ = guard(info.Env(), [&] { return std::make_shared<Model>(std::move(spec)); });
}

Napi::Value ModelWrap::CreateAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Args args(info, "createModel(spec, device)");
  NetSpec spec = spec_from_js(Fields(args.object(0, "spec"), "spec"));
  const std::string device = args.string(1, "device");
  return run_async<std::shared_ptr<Model>>(
      env,
      [spec, device] {
        auto model = std::make_shared<Model>(spec);
        if (device != "cpu") model->to(device);
        return model;
      },
      [](Napi::Env env, std::shared_ptr<Model>& model) -> Napi::Value {
        return wrap_shared(env, AddonData::of(env).model_class, model);
      });
}

std::shared_ptr<Model> ModelWrap::live(Napi::Env env) const {
  if (!model_) throw to_js_error(env, Failure{"ERR_DISPOSED", "the model was disposed"});
  return model_;
}

std::shared_ptr<Model> ModelWrap::unwrap(const Napi::Value& value) {
  return unwrap_instance<ModelWrap>(value, AddonData::of(value.Env()).model_class, "Model")->live(value.Env());
}

// forward(input: TypedArray, shape: number[], forceEval: boolean): Promise<{ data, shape }>
Napi::Value ModelWrap::Forward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto model = live(env);
  const Args args(info, "forward(input, shape, forceEval)");
  const auto shape = shape_from_js(info[1], "shape");
  torch::Tensor input = view_of(info[0], shape, "input");
  const bool force_eval = args.boolean(2, "forceEval");
  return run_async<torch::Tensor>(
      env,
      [model, input, force_eval] {
        auto lock = model->acquire("run forward");
        return model->forward(input, force_eval);
      },
      [](Napi::Env env, torch::Tensor& out) -> Napi::Value { return tensor_to_js(env, out); }, {info[0]});
}

// stateEntries(): [{ name, shape, dtype, parameter, requiresGrad }]
Napi::Value ModelWrap::StateEntries(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto model = live(env);
  auto entries = model->state();
  Napi::Array out = Napi::Array::New(env, entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    Napi::Object e = Napi::Object::New(env);
    e.Set("name", entries[i].name);
    e.Set("shape", shape_to_js(env, entries[i].tensor.sizes()));
    e.Set("dtype", dtype_name(entries[i].tensor.scalar_type()));
    e.Set("parameter", entries[i].parameter);
    e.Set("requiresGrad", entries[i].tensor.requires_grad());
    out.Set(static_cast<uint32_t>(i), e);
  }
  return out;
}

// exportState(): Promise<[{ name, dtype, shape, data }]> with CPU copies taken off the event loop.
Napi::Value ModelWrap::ExportState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto model = live(env);
  return run_async<std::vector<NamedTensor>>(
      env,
      [model] {
        auto lock = model->acquire("export the state");
        return model->state_on_cpu();
      },
      [](Napi::Env env, std::vector<NamedTensor>& entries) -> Napi::Value {
        return named_tensors_to_js(env, entries);
      });
}

// importState(entries: [{ name, shape, data }]): Promise<void>. Names and shapes were matched by the facade.
Napi::Value ModelWrap::ImportState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto model = live(env);
  Napi::Array array = Args(info, "importState(entries)").array(0, "entries");
  std::vector<std::pair<std::string, torch::Tensor>> entries;
  std::vector<Napi::Value> keep;
  for (uint32_t i = 0; i < array.Length(); ++i) {
    Napi::Value v = array[i];
    if (!v.IsObject()) throw Napi::TypeError::New(env, "importState: each entry must be an object");
    Napi::Object e = v.As<Napi::Object>();
    Napi::Value data = e.Get("data");
    entries.emplace_back(Fields(e, "entries[" + std::to_string(i) + "]").string("name"),
                         view_of(data, shape_from_js(e.Get("shape"), "shape"), "data"));
    keep.push_back(data);
  }
  return run_async<bool>(
      env,
      [model, entries] {
        auto lock = model->acquire("load a state");
        model->load_state(entries);
        return true;
      },
      [](Napi::Env env, bool&) { return env.Undefined(); }, keep);
}

Napi::Value ModelWrap::SetTraining(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto model = live(env);
  const bool on = Args(info, "setTraining(on)").boolean(0, "on");
  guard(env, [&] {
    auto lock = model->acquire("switch train/eval mode");
    model->net()->train(on);
  });
  return env.Undefined();
}

Napi::Value ModelWrap::IsTraining(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), live(info.Env())->net()->is_training());
}

Napi::Value ModelWrap::To(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto model = live(env);
  const std::string device = Args(info, "to(device)").string(0, "device");
  return run_async<bool>(
      env,
      [model, device] {
        auto lock = model->acquire("move the model");
        model->to(device);
        return true;
      },
      [](Napi::Env env, bool&) { return env.Undefined(); });
}

Napi::Value ModelWrap::Device(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), live(info.Env())->device().str());
}

// trace(height, width): the forward pass as operators with shapes (batch 1).
Napi::Value ModelWrap::Trace(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto model = live(env);
  const Args args(info, "trace(height, width)");
  const int64_t h = args.integer(0, "height"), w = args.integer(1, "width");
  return guard(env, [&] {
    auto lock = model->acquire("trace");
    GraphBuilder graph = model->net()->trace(h, w);
    return graph_to_js(env, graph);
  });
}

Napi::Value ModelWrap::MinInputSize(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(live(info.Env())->net()->min_input_size()));
}

// setRequiresGrad(prefixes: string[], on: boolean): number of parameters matched
Napi::Value ModelWrap::SetRequiresGrad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto model = live(env);
  const auto prefixes = strings_from_js(info[0], "prefixes");
  const bool on = Args(info, "setRequiresGrad(prefixes, on)").boolean(1, "on");
  return guard(env, [&] {
    auto lock = model->acquire("freeze or unfreeze");
    return Napi::Number::New(env, static_cast<double>(model->set_requires_grad(prefixes, on)));
  });
}

// replaceHead(numClasses, seed)
Napi::Value ModelWrap::ReplaceHead(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto model = live(env);
  const Args args(info, "replaceHead(numClasses, seed)");
  const int64_t classes = args.integer(0, "numClasses");
  const auto seed = static_cast<uint64_t>(args.integer(1, "seed"));
  guard(env, [&] {
    auto lock = model->acquire("replace the classifier");
    model->net()->replace_head(classes, seed);
  });
  return env.Undefined();
}

// dispose(): drops this handle; work already queued keeps its own reference and finishes.
Napi::Value ModelWrap::Dispose(const Napi::CallbackInfo& info) {
  model_.reset();
  return info.Env().Undefined();
}

}  // namespace rt::js
