#pragma once
// Per-environment state (the main thread and each worker_thread load the addon separately): the class
// constructors, the thread CPU inference runs on.
#include <napi.h>

#include <memory>

#include "device/compute_thread.h"

namespace rt::js {

struct AddonData {
  Napi::FunctionReference model_class;
  Napi::FunctionReference dataset_class;
  Napi::FunctionReference run_class;
  Napi::FunctionReference queue_class;
  Napi::FunctionReference fused_class;
  // Where this realm's CPU inference runs (device/compute_thread.h); made at the first CPU fuse().
  std::shared_ptr<ComputeThread> compute;

  static AddonData& of(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }
};

}  // namespace rt::js
