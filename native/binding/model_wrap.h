#pragma once
// JS class `Model` over rt::Model. Each method checks that the model was not disposed, copies its JS
// arguments into C++ values, and (for anything that touches tensors for long) queues a PromiseWorker.
#include <napi.h>

#include <memory>

#include "models/model.h"

namespace rt::js {

class ModelWrap : public Napi::ObjectWrap<ModelWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit ModelWrap(const Napi::CallbackInfo& info);

  // createModel(spec, device): Promise<Model>, building (and moving) the network off the event loop.
  static Napi::Value CreateAsync(const Napi::CallbackInfo& info);

  // The model behind a JS Model object (for the trainer); throws if `value` is not one or was disposed.
  static std::shared_ptr<Model> unwrap(const Napi::Value& value);

 private:
  std::shared_ptr<Model> live(Napi::Env env) const;

  Napi::Value Forward(const Napi::CallbackInfo& info);
  Napi::Value StateEntries(const Napi::CallbackInfo& info);
  Napi::Value ExportState(const Napi::CallbackInfo& info);
  Napi::Value ImportState(const Napi::CallbackInfo& info);
  Napi::Value SetTraining(const Napi::CallbackInfo& info);
  Napi::Value IsTraining(const Napi::CallbackInfo& info);
  Napi::Value To(const Napi::CallbackInfo& info);
  Napi::Value Device(const Napi::CallbackInfo& info);
  Napi::Value Trace(const Napi::CallbackInfo& info);
  Napi::Value MinInputSize(const Napi::CallbackInfo& info);
  Napi::Value SetRequiresGrad(const Napi::CallbackInfo& info);
  Napi::Value ReplaceHead(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);

  std::shared_ptr<Model> model_;
};

}  // namespace rt::js
