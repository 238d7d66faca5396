#pragma once
// Per-environment state (the main thread and each worker_thread load the addon separately): the class
// constructors.
#include <napi.h>

namespace rt::js {

struct AddonData {
  Napi::FunctionReference model_class;
  Napi::FunctionReference dataset_class;
  Napi::FunctionReference run_class;
  Napi::FunctionReference queue_class;
  Napi::FunctionReference fused_class;

  static AddonData& of(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }
};

}  // namespace rt::js
