#pragma once
// Per-environment state (the main thread and each worker_thread load the addon separately).
#include <napi.h>

namespace rt::js {

struct AddonData {
  Napi::FunctionReference model_class;
  static AddonData& of(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }
};

}  // namespace rt::js
