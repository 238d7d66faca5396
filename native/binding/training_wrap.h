#pragma once
// A training run on its own native thread. Progress events reach JS through one ThreadSafeFunction;
// the run's Promise settles when the thread ends; cancel() stops it after the current iteration.
#include <napi.h>

#include <memory>
#include <thread>

#include "train/trainer.h"

namespace rt::js {

struct ActiveRun {
  std::shared_ptr<Trainer> trainer;
  // Joined by the ThreadSafeFunction's finalizer, on the JS thread: after the run released it, or when the
  // environment goes away (a worker exits), after cancelling the run.
  std::thread thread;
};

class TrainingRunWrap : public Napi::ObjectWrap<TrainingRunWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  // startTraining(model, source, validation?, test?, config, onEvent): TrainingRun { done, cancel() }
  static Napi::Value Start(const Napi::CallbackInfo& info);
  explicit TrainingRunWrap(const Napi::CallbackInfo& info);

 private:
  Napi::Value Cancel(const Napi::CallbackInfo& info);
  std::shared_ptr<ActiveRun> run_;
};

}  // namespace rt::js
