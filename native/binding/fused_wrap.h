#pragma once
// JS class `FusedModel`: an eval-only BN-folded snapshot of a model (rt::FusedNet) for fast inference.
#include <napi.h>

#include <memory>

#include "device/compute_thread.h"
#include "infer/fused.h"
#include "models/model.h"

namespace rt::js {

class FusedWrap : public Napi::ObjectWrap<FusedWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  // fuse(model, height, width, channelsLast, onednn, bfloat16): Promise<FusedModel>
  static Napi::Value FuseAsync(const Napi::CallbackInfo& info);
  explicit FusedWrap(const Napi::CallbackInfo& info);

 private:
  Napi::Value Forward(const Napi::CallbackInfo& info);
  Napi::Value Folded(const Napi::CallbackInfo& info);
  Napi::Value Kernels(const Napi::CallbackInfo& info);
  Napi::Value Profile(const Napi::CallbackInfo& info);
  std::shared_ptr<const FusedNet> net_;
  torch::Device device_{torch::kCPU};
  std::shared_ptr<ComputeThread> compute_;  // CPU nets: where forward runs
};

}  // namespace rt::js
