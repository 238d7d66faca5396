#pragma once
// JS class `BatchQueue`: the bounded queue a streamed dataset (image folders) pushes decoded batches into
// while the trainer draws from it on its own thread.
#include <napi.h>

#include <memory>

#include "data/batch_source.h"

namespace rt::js {

class BatchQueueWrap : public Napi::ObjectWrap<BatchQueueWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  static std::shared_ptr<BatchQueue> unwrap(const Napi::Value& value);
  // new BatchQueue(capacity, batchesPerEpoch)
  explicit BatchQueueWrap(const Napi::CallbackInfo& info);
  ~BatchQueueWrap() override;

 private:
  Napi::Value Push(const Napi::CallbackInfo& info);
  Napi::Value OnSpace(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value Size(const Napi::CallbackInfo& info);
  void release_listener();

  std::shared_ptr<BatchQueue> queue_;
  std::shared_ptr<Napi::ThreadSafeFunction> listener_;
};

}  // namespace rt::js
