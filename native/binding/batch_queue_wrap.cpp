#include "binding/batch_queue_wrap.h"

#include "binding/addon_data.h"
#include "binding/args.h"
#include "binding/convert.h"
#include "binding/errors.h"
#include "binding/shared_object.h"

namespace rt::js {

Napi::Function BatchQueueWrap::Define(Napi::Env env) {
  return DefineClass(
      env, "BatchQueue",
      {InstanceMethod<&BatchQueueWrap::Push>("push"), InstanceMethod<&BatchQueueWrap::OnSpace>("onSpace"),
       InstanceMethod<&BatchQueueWrap::Close>("close"), InstanceMethod<&BatchQueueWrap::Size>("size")});
}

BatchQueueWrap::BatchQueueWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<BatchQueueWrap>(info) {
  const Args args(info, "BatchQueue(capacity, batchesPerEpoch)");
  const int64_t capacity = args.integer(0, "capacity");
  const int64_t per_epoch = args.integer(1, "batchesPerEpoch");
  if (capacity < 1 || per_epoch < 1)
    throw Napi::RangeError::New(info.Env(), "capacity and batchesPerEpoch must be positive");
  queue_ = std::make_shared<BatchQueue>(capacity, per_epoch);
}

BatchQueueWrap::~BatchQueueWrap() {
  if (queue_) queue_->set_space_callback(nullptr);
  release_listener();
}

std::shared_ptr<BatchQueue> BatchQueueWrap::unwrap(const Napi::Value& value) {
  return unwrap_instance<BatchQueueWrap>(value, AddonData::of(value.Env()).queue_class, "Dataset or BatchQueue")
      ->queue_;
}

// push(epoch, index, images, shape, labels): false while the queue is full
Napi::Value BatchQueueWrap::Push(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Args args(info, "push(epoch, index, images, shape, labels)");
  const int64_t epoch = args.integer(0, "epoch"), index = args.integer(1, "index");
  const auto shape = shape_from_js(info[3], "shape");
  if (shape.size() != 4) throw Napi::TypeError::New(env, "shape must be [B, C, H, W]");
  RawBatch batch{view_of(info[2], shape, "images").clone(), view_of(info[4], {shape[0]}, "labels").to(torch::kInt64)};
  return Napi::Boolean::New(env, guard(env, [&] { return queue_->try_push(epoch, index, std::move(batch)); }));
}

// onSpace(callback): called (on the main thread) whenever the trainer takes a batch out
Napi::Value BatchQueueWrap::OnSpace(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  release_listener();
  auto tsfn = Napi::ThreadSafeFunction::New(env, Args(info, "onSpace(callback)").function(0, "callback"),
                                            "resnet-torch batch queue", 0, 1);
  tsfn.Unref(env);  // a waiting producer must not keep the process alive on its own
  listener_ = std::make_shared<Napi::ThreadSafeFunction>(tsfn);
  std::weak_ptr<Napi::ThreadSafeFunction> weak = listener_;
  queue_->set_space_callback([weak] {
    if (auto l = weak.lock()) l->NonBlockingCall();
  });
  return env.Undefined();
}

// close(error?): no more batches; the trainer fails with `error` if it still needs some
Napi::Value BatchQueueWrap::Close(const Napi::CallbackInfo& info) {
  queue_->close(info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "");
  queue_->set_space_callback(nullptr);
  release_listener();
  return info.Env().Undefined();
}

Napi::Value BatchQueueWrap::Size(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(queue_->size()));
}

void BatchQueueWrap::release_listener() {
  if (listener_) {
    listener_->Release();
    listener_.reset();
  }
}

}  // namespace rt::js
