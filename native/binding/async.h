#pragma once
// Long work off the event loop: `work` runs on the libuv pool and never touches JS; `to_js` builds the
// result on the main thread. The JS values the work reads (input arrays) are kept alive until it ends.
#include <napi.h>

#include <functional>
#include <utility>
#include <vector>

#include "binding/errors.h"
#include "device/runtime.h"

namespace rt::js {

template <typename Result>
class PromiseWorker : public Napi::AsyncWorker {
 public:
  using Work = std::function<Result()>;
  using ToJs = std::function<Napi::Value(Napi::Env, Result&)>;

  PromiseWorker(Napi::Env env, Work work, ToJs to_js, const std::vector<Napi::Value>& keep_alive)
      : Napi::AsyncWorker(env, "resnet-torch"),
        deferred_(Napi::Promise::Deferred::New(env)),
        work_(std::move(work)),
        to_js_(std::move(to_js)) {
    for (const auto& v : keep_alive)
      if (v.IsObject()) keep_.push_back(Napi::Persistent(v.As<Napi::Object>()));
  }

  Napi::Promise promise() const { return deferred_.Promise(); }

 protected:
  void Execute() override {
    adopt_intra_op_threads();  // libuv threads start with libtorch's default, not the count we set
    try {
      result_ = work_();
    } catch (...) {
      failure_ = describe_current_exception();
      SetError(failure_.message);
    }
  }
  void OnOK() override {
    Napi::Env env = Env();
    try {
      deferred_.Resolve(to_js_(env, result_));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    } catch (...) {
      deferred_.Reject(to_js_error(env, describe_current_exception()).Value());
    }
  }
  void OnError(const Napi::Error&) override { deferred_.Reject(to_js_error(Env(), failure_).Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  Work work_;
  ToJs to_js_;
  Result result_{};
  Failure failure_;
  std::vector<Napi::ObjectReference> keep_;
};

template <typename Result>
Napi::Promise run_async(Napi::Env env, std::function<Result()> work,
                        std::function<Napi::Value(Napi::Env, Result&)> to_js,
                        const std::vector<Napi::Value>& keep = {}) {
  auto* worker = new PromiseWorker<Result>(env, std::move(work), std::move(to_js), keep);
  Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

}  // namespace rt::js
