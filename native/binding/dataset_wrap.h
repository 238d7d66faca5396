#pragma once
// JS class `Dataset` (native side): a TensorDataset copied once from JS arrays into native memory.
#include <napi.h>

#include <memory>

#include "data/tensor_dataset.h"

namespace rt::js {

class DatasetWrap : public Napi::ObjectWrap<DatasetWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  // createDataset(images, shape, labels, numClasses): Promise<Dataset>, copying off the event loop.
  static Napi::Value CreateAsync(const Napi::CallbackInfo& info);
  static std::shared_ptr<const TensorDataset> unwrap(const Napi::Value& value);
  static bool is(const Napi::Value& value);
  explicit DatasetWrap(const Napi::CallbackInfo& info);

 private:
  static Napi::Value wrap(Napi::Env env, std::shared_ptr<const TensorDataset> data);
  Napi::Value Length(const Napi::CallbackInfo& info);
  Napi::Value Shape(const Napi::CallbackInfo& info);
  Napi::Value Dtype(const Napi::CallbackInfo& info);
  Napi::Value Subset(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value LabelCounts(const Napi::CallbackInfo& info);
  Napi::Value Slice(const Napi::CallbackInfo& info);
  Napi::Value Evaluate(const Napi::CallbackInfo& info);
  Napi::Value EpochOrder(const Napi::CallbackInfo& info);
  Napi::Value Augment(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  // The dataset, or ERR_DISPOSED once dispose() ran.
  std::shared_ptr<const TensorDataset> live(Napi::Env env) const;

  std::shared_ptr<const TensorDataset> data_;
};

}  // namespace rt::js
