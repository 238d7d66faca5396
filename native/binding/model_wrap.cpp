#include "binding/model_wrap.h"

#include "binding/addon_data.h"
#include "binding/async.h"
#include "binding/convert.h"
#include "binding/errors.h"
#include "binding/train_convert.h"
#include "device/cuda.h"

namespace rt::js {

Napi::Function ModelWrap::Define(Napi::Env env) {
  return DefineClass(env, "Model",
                     {InstanceMethod<&ModelWrap::Forward>("forward"), InstanceMethod<&ModelWrap::StateEntries>("stateEntries"),
                      InstanceMethod<&ModelWrap::ExportState>("exportState"),
                      InstanceMethod<&ModelWrap::ImportState>("importState"),
                      InstanceMethod<&ModelWrap::SetTraining>("setTraining"),
                      InstanceMethod<&ModelWrap::IsTraining>("isTraining"), InstanceMethod<&ModelWrap::To>("to"),
                      InstanceMethod<&ModelWrap::Device>("device"), InstanceMethod<&ModelWrap::Trace>("trace"),
                      InstanceMethod<&ModelWrap::MinInputSize>("minInputSize"),
                      InstanceMethod<&ModelWrap::SetRequiresGrad>("setRequiresGrad"),
                      InstanceMethod<&ModelWrap::ReplaceHead>("replaceHead"),
                      InstanceMethod<&ModelWrap::Dispose>("dispose")});
}

ModelWrap::ModelWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModelWrap>(info) {
  Napi::Env env = info.Env();
  if (info[0].IsExternal()) {  // from CreateAsync: the model is already built
    model_ = *info[0].As<Napi::External<std::shared_ptr<Model>>>().Data();
    return;
  }
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "Model(spec): spec must be an object");
  NetSpec spec = spec_from_js(info[0].As<Napi::Object>());
  model_ = guard(env, [&] { return std::make_shared<Model>(std::move(spec)); });
}

Napi::Value ModelWrap::CreateAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "createModel(spec, device): spec must be an object");
  NetSpec spec = spec_from_js(info[0].As<Napi::Object>());
  const std::string device = info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "cpu";
  return run_async<std::shared_ptr<Model>>(
      env,
      [spec, device] {
        auto model = std::make_shared<Model>(spec);
        if (device != "cpu") model->to(device);
        return model;
      },
      [](Napi::Env env, std::shared_ptr<Model>& model) -> Napi::Value {
        auto external = Napi::External<std::shared_ptr<Model>>::New(
            env, new std::shared_ptr<Model>(model), [](Napi::Env, std::shared_ptr<Model>* p) { delete p; });
        return AddonData::of(env).model_class.New({external});
      });
}

std::shared_ptr<Model> ModelWrap::live(Napi::Env env) const {
  if (!model_) {
    Napi::Error e = Napi::Error::New(env, "the model was disposed");
    e.Set("code", Napi::String::New(env, "ERR_DISPOSED"));
    throw e;
  }
  return model_;
}

std::shared_ptr<Model> ModelWrap::unwrap(const Napi::Value& value) {
  Napi::Env env = value.Env();
  if (!value.IsObject() || !value.As<Napi::Object>().InstanceOf(AddonData::of(env).model_class.Value()))
    throw Napi::TypeError::New(env, "expected a native Model");
  return Unwrap(value.As<Napi::Object>())->live(env);
}

// forward(input: TypedArray, shape: number[], forceEval: boolean): Promise<{ data, shape }>
Napi::Value ModelWrap::Forward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto model = live(env);
  const auto shape = shape_from_js(info[1], "shape");
  torch::Tensor input = view_of(info[0], shape, "input");
  const bool force_eval = info[2].ToBoolean().Value();
  return run_async<torch::Tensor>(
      env,
      [model, input, force_eval] {
        auto lock = model->acquire("run forward");
        try {
          return model->forward(input, force_eval);
        } catch (const c10::Error& e) {
          if (std::string(e.what()).find("out of memory") != std::string::npos) release_cuda_cache_after_oom();
          throw;
        }
      },
      [](Napi::Env env, torch::Tensor& out) -> Napi::Value { return tensor_to_js(env, out); },
      {info[0]});
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
      [](Napi::Env env, std::vector<NamedTensor>& entries) -> Napi::Value { return named_tensors_to_js(env, entries); });
}

// importState(entries: [{ name, shape, data }]): Promise<void>. Names and shapes were matched by the facade.
Napi::Value ModelWrap::ImportState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto model = live(env);
  if (!info[0].IsArray()) throw Napi::TypeError::New(env, "importState(entries): entries must be an array");
  Napi::Array array = info[0].As<Napi::Array>();
  std::vector<std::pair<std::string, torch::Tensor>> entries;
  std::vector<Napi::Value> keep;
  for (uint32_t i = 0; i < array.Length(); ++i) {
    Napi::Value v = array[i];
    if (!v.IsObject()) throw Napi::TypeError::New(env, "importState: each entry must be an object");
    Napi::Object e = v.As<Napi::Object>();
    Napi::Value data = e.Get("data");
    entries.emplace_back(string_or(e, "name", ""), view_of(data, shape_from_js(e.Get("shape"), "shape"), "data"));
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
  const bool on = info[0].ToBoolean().Value();
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
  if (!info[0].IsString()) throw Napi::TypeError::New(env, "to(device): device must be a string");
  const std::string device = info[0].As<Napi::String>().Utf8Value();
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
  const int64_t h = info[0].As<Napi::Number>().Int64Value(), w = info[1].As<Napi::Number>().Int64Value();
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
  const bool on = info[1].ToBoolean().Value();
  return guard(env, [&] {
    auto lock = model->acquire("freeze or unfreeze");
    return Napi::Number::New(env, static_cast<double>(model->set_requires_grad(prefixes, on)));
  });
}

// replaceHead(numClasses, seed)
Napi::Value ModelWrap::ReplaceHead(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto model = live(env);
  const int64_t classes = info[0].As<Napi::Number>().Int64Value();
  const auto seed = static_cast<uint64_t>(info[1].As<Napi::Number>().DoubleValue());
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
