#pragma once
// A training run on its own native thread. Progress events reach JS through one ThreadSafeFunction;
// the run's Promise settles when the thread ends; cancel() stops it after the current iteration.
#include <napi.h>

#include <condition_variable>
#include <memory>
#include <mutex>

#include "train/trainer.h"

namespace rt::js {

class ActiveRun {
 public:
  std::shared_ptr<Trainer> trainer;
  void mark_finished();
  void wait_finished();

 private:
  std::mutex mutex_;
  std::condition_variable finished_cv_;
  bool finished_ = false;
};

class TrainingRunWrap : public Napi::ObjectWrap<TrainingRunWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  // startTraining(model, source, validation?, test?, config, onEvent): TrainingRun { done, cancel() }
  static Napi::Value Start(const Napi::CallbackInfo& info);
  // Stops every run of an environment that is being torn down (worker exit) and waits for its thread.
  static void StopAll(Napi::Env env);
  explicit TrainingRunWrap(const Napi::CallbackInfo& info);

 private:
  Napi::Value Cancel(const Napi::CallbackInfo& info);
  std::shared_ptr<ActiveRun> run_;
};

}  // namespace rt::js
