#include "binding/training_wrap.h"

#include <ATen/Parallel.h>

#include <optional>
#include <thread>

#include "binding/addon_data.h"
#include "binding/args.h"
#include "binding/async.h"
#include "binding/batch_queue_wrap.h"
#include "binding/convert.h"
#include "binding/dataset_wrap.h"
#include "binding/errors.h"
#include "binding/model_wrap.h"
#include "binding/shared_object.h"
#include "binding/train_convert.h"
#include "data/batch_source.h"

namespace rt::js {

namespace {

// What the training thread sends to the main thread: an event, or the end (a result or a failure).
struct Message {
  std::optional<TrainEvent> event;
  std::optional<TrainResult> result;
  std::optional<Failure> failure;
};

struct Context {
  Napi::Promise::Deferred deferred;
  std::shared_ptr<ActiveRun> run;
};

void deliver(Napi::Env env, Napi::Function on_event, Context* context, Message* message) {
  std::unique_ptr<Message> owned(message);
  if (env == nullptr) return;  // the environment is going away
  try {
    if (owned->event) {
      on_event.Call({event_to_js(env, *owned->event)});
    } else {
      if (owned->result)
        context->deferred.Resolve(result_to_js(env, *owned->result));
      else
        context->deferred.Reject(to_js_error(env, *owned->failure).Value());
    }
  } catch (const Napi::Error& e) {
    // A throwing progress callback must not take the run down; the facade reports it.
    if (owned->result || owned->failure) context->deferred.Reject(e.Value());
  }
}

using RunTsfn = Napi::TypedThreadSafeFunction<Context, Message, deliver>;

}  // namespace

Napi::Function TrainingRunWrap::Define(Napi::Env env) {
  return DefineClass(env, "TrainingRun", {InstanceMethod<&TrainingRunWrap::Cancel>("cancel")});
}

TrainingRunWrap::TrainingRunWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TrainingRunWrap>(info) {
  run_ = adopt_shared<ActiveRun>(info, "TrainingRun objects come from startTraining()");
}

Napi::Value TrainingRunWrap::Cancel(const Napi::CallbackInfo& info) {
  if (run_ && run_->trainer) run_->trainer->cancel();
  return info.Env().Undefined();
}

Napi::Value TrainingRunWrap::Start(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Args args(info, "startTraining(model, source, validation, test, config, onEvent)");
  auto model = ModelWrap::unwrap(info[0]);
  std::shared_ptr<BatchSource> source;
  TrainConfig config = train_config_from_js(Fields(args.object(4, "config"), ""));
  Napi::Function on_event = args.function(5, "onEvent");
  if (DatasetWrap::is(info[1])) {
    auto data = DatasetWrap::unwrap(info[1]);
    // An in-memory training set is copied to the training device once.
    TensorDataset train = data->to(model->device());
    source = std::make_shared<InMemorySource>(std::move(train), config.batch_size, config.shuffle, config.drop_last,
                                              config.seed, config.dist.rank, config.dist.world_size, config.repeats,
                                              config.repeats_round);
  } else {
    source = BatchQueueWrap::unwrap(info[1]);
  }
  std::optional<TensorDataset> validation, test;
  if (DatasetWrap::is(info[2])) validation = *DatasetWrap::unwrap(info[2]);
  if (DatasetWrap::is(info[3])) test = *DatasetWrap::unwrap(info[3]);

  auto run = std::make_shared<ActiveRun>();
  auto deferred = Napi::Promise::Deferred::New(env);
  auto* context = new Context{deferred, run};
  RunTsfn tsfn = RunTsfn::New(env, on_event, "resnet-torch training", 0, 1, context, [](Napi::Env, void*, Context* c) {
    c->run->trainer->cancel();  // no-op once it ended; stops it at teardown
    if (c->run->thread.joinable()) c->run->thread.join();
    delete c;
  });
  run->trainer = std::make_shared<Trainer>(
      model, source, std::move(validation), std::move(test), std::move(config), [tsfn](TrainEvent e) mutable {
        tsfn.NonBlockingCall(new Message{std::move(e), std::nullopt, std::nullopt});
      });
  release_idle_teams(env);  // before the step's team starts: device/runtime.h, CpuTrainingScope
  run->thread = std::thread([run = run.get(), tsfn]() mutable {
    auto* message = new Message;
    try {
      message->result = run->trainer->run();
    } catch (...) {
      message->failure = describe_current_exception();
    }
    if (tsfn.NonBlockingCall(message) != napi_ok) delete message;
    tsfn.Release();
  });

  Napi::Object handle = wrap_shared(env, AddonData::of(env).run_class, run);
  handle.Set("done", deferred.Promise());
  return handle;
}

}  // namespace rt::js
