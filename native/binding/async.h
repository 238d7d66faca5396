#pragma once
// Long work off the event loop: `work` runs on the libuv pool and never touches JS; `to_js` builds the
// result on the main thread. The JS values the work reads (input arrays) are kept alive until it ends.
#include <napi.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
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
    release_team_if_training();  // device/runtime.h
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

// Asks the libuv threads to end their idle OpenMP teams (device/runtime.h, CpuTrainingScope): one job per thread of
// the pool, each waiting briefly for the others so that no two land on one thread. A thread busy with other work
// meanwhile keeps its team until its next job of ours, which then ends it.
class ReleaseTeamWorker : public Napi::AsyncWorker {
 public:
  struct Meeting {
    std::mutex mutex;
    std::condition_variable all_here;
    int arrived = 0, expected = 0;
  };
  ReleaseTeamWorker(Napi::Env env, std::shared_ptr<Meeting> meeting)
      : Napi::AsyncWorker(env, "resnet-torch teams"), meeting_(std::move(meeting)) {}
  void Execute() override {
    release_thread_team();
    std::unique_lock<std::mutex> lock(meeting_->mutex);
    ++meeting_->arrived;
    meeting_->all_here.notify_all();
    meeting_->all_here.wait_for(lock, std::chrono::milliseconds(20),
                                [this] { return meeting_->arrived >= meeting_->expected; });
  }

 private:
  std::shared_ptr<Meeting> meeting_;
};

inline void release_idle_teams(Napi::Env env) {
  if (teams_held() == 0) return;
  const char* size = std::getenv("UV_THREADPOOL_SIZE");  // libuv's pool: 4 threads unless set
  const int threads = size && std::atoi(size) > 0 ? std::min(std::atoi(size), 1024) : 4;
  auto meeting = std::make_shared<ReleaseTeamWorker::Meeting>();
  meeting->expected = threads;
  for (int i = 0; i < threads; ++i) (new ReleaseTeamWorker(env, meeting))->Queue();
}

}  // namespace rt::js
