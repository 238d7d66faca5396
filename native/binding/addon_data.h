#pragma once
// Per-environment state (the main thread and each worker_thread load the addon separately): the class
// constructors, and the training runs to stop and wait for if the environment is torn down.
#include <napi.h>

#include <memory>
#include <mutex>
#include <set>

namespace rt::js {

class ActiveRun;

struct AddonData {
  Napi::FunctionReference model_class;
  Napi::FunctionReference dataset_class;
  Napi::FunctionReference run_class;
  Napi::FunctionReference queue_class;
  Napi::FunctionReference fused_class;
  std::mutex runs_mutex;
  std::set<std::shared_ptr<ActiveRun>> runs;

  static AddonData& of(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }
};

}  // namespace rt::js
