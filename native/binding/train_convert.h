#pragma once
// Training settings from JS, and events, metrics and states back to JS.
#include <napi.h>

#include "binding/args.h"

#include "train/config.h"
#include "train/metrics.h"
#include "train/trainer.h"

namespace rt::js {

// Every key required (lib/native.ts: NativeTrainConfig, NativeAugment); an unknown enum value names its key.
AugmentConfig augment_from_js(const Fields& js);
TrainConfig train_config_from_js(const Fields& js);
// Every field train_config_from_js reads, by its JS name: a kind ("integer", ...), a nested object, or the names
// of a choice (the unit test compares it with the config lib/train/resolve.ts builds).
Napi::Object train_config_fields(Napi::Env env);
Napi::Object metrics_to_js(Napi::Env env, const EvalMetrics& m);
Napi::Object event_to_js(Napi::Env env, const TrainEvent& e);
Napi::Object state_to_js(Napi::Env env, const TrainState& s);
Napi::Object result_to_js(Napi::Env env, const TrainResult& r);

}  // namespace rt::js
