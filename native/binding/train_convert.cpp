#include "binding/train_convert.h"

#include "binding/convert.h"

namespace rt::js {

namespace {

Napi::Object object_or_empty(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return Napi::Object::New(o.Env());
  if (!v.IsObject()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be an object");
  return v.As<Napi::Object>();
}

int64_t int_or(const Napi::Object& o, const char* key, int64_t fallback) {
  return static_cast<int64_t>(number_or(o, key, static_cast<double>(fallback)));
}

Napi::Array doubles_to_js(Napi::Env env, const std::vector<double>& values) {
  Napi::Array out = Napi::Array::New(env, values.size());
  for (size_t i = 0; i < values.size(); ++i) out.Set(static_cast<uint32_t>(i), values[i]);
  return out;
}

}  // namespace

AugmentConfig augment_from_js(const Napi::Object& js) {
  AugmentConfig a;
  a.pad = int_or(js, "pad", 0);
  a.flip = bool_or(js, "flip", false);
  a.random_resized_crop = bool_or(js, "randomResizedCrop", false);
  a.scale_min = number_or(js, "scaleMin", a.scale_min);
  a.scale_max = number_or(js, "scaleMax", a.scale_max);
  a.ratio_min = number_or(js, "ratioMin", a.ratio_min);
  a.ratio_max = number_or(js, "ratioMax", a.ratio_max);
  a.out_height = int_or(js, "outHeight", 0);
  a.out_width = int_or(js, "outWidth", 0);
  const std::string norm = string_or(js, "norm", "none");
  a.norm = norm == "per-pixel" ? NormKind::PerPixel : norm == "per-channel" ? NormKind::PerChannel : NormKind::None;
  if (a.norm != NormKind::None) {
    Napi::Value mean = js.Get("mean");
    a.mean = view_of(mean, shape_from_js(js.Get("meanShape"), "meanShape"), "mean").clone();
    if (a.norm == NormKind::PerChannel) {
      Napi::Value std = js.Get("std");
      a.std = view_of(std, {a.mean.numel()}, "std").clone();
    }
  }
  a.channels_last = bool_or(js, "channelsLast", false);
  return a;
}


TrainConfig train_config_from_js(const Napi::Object& js) {
  TrainConfig c;
  c.batch_size = int_or(js, "batchSize", c.batch_size);
  c.total_iterations = int_or(js, "totalIterations", 0);
  c.start_iteration = int_or(js, "startIteration", 0);
  c.seed = static_cast<uint64_t>(number_or(js, "seed", 0));
  c.shuffle = bool_or(js, "shuffle", true);
  c.drop_last = bool_or(js, "dropLast", true);
  c.deterministic = bool_or(js, "deterministic", false);
  c.cudnn_benchmark = bool_or(js, "cudnnBenchmark", true);
  c.label_smoothing = number_or(js, "labelSmoothing", 0);
  c.log_every = int_or(js, "logEvery", c.log_every);
  c.eval_every_iterations = int_or(js, "evalEveryIterations", 0);
  c.eval_every_epochs = int_or(js, "evalEveryEpochs", 1);
  c.eval_batch_size = int_or(js, "evalBatchSize", c.eval_batch_size);
  c.plateau_metric = string_or(js, "plateauMetric", c.plateau_metric);
  c.diagnostics = bool_or(js, "diagnostics", false);
  c.threads = static_cast<int>(int_or(js, "threads", 0));
  c.checkpoint_every_iterations = int_or(js, "checkpointEveryIterations", 0);
  c.state_at_end = bool_or(js, "stateAtEnd", false);
  c.state_on_evaluation = bool_or(js, "stateOnEvaluation", false);
  c.channels_last = bool_or(js, "channelsLast", false);
  c.cuda_graph = bool_or(js, "cudaGraph", false);
  const std::string precision = string_or(js, "precision", "float32");
  c.precision = precision == "bfloat16" ? Precision::BFloat16 : precision == "float16" ? Precision::Float16 : Precision::Float32;
  c.data_on_device = bool_or(js, "dataOnDevice", true);
  c.prefetch_depth = static_cast<size_t>(int_or(js, "prefetchDepth", 2));
  c.optimizer_steps = int_or(js, "optimizerSteps", 0);
  c.loss_scale = number_or(js, "lossScale", c.loss_scale);

  Napi::Object o = object_or_empty(js, "optimizer");
  c.optimizer.kind = string_or(o, "type", "sgd") == "adamw" ? OptimizerConfig::Kind::AdamW : OptimizerConfig::Kind::SGD;
  c.optimizer.momentum = number_or(o, "momentum", c.optimizer.kind == OptimizerConfig::Kind::SGD ? 0.9 : 0.0);
  c.optimizer.dampening = number_or(o, "dampening", 0);
  c.optimizer.weight_decay = number_or(o, "weightDecay", 0);
  c.optimizer.nesterov = bool_or(o, "nesterov", false);
  c.optimizer.beta1 = number_or(o, "beta1", 0.9);
  c.optimizer.beta2 = number_or(o, "beta2", 0.999);
  c.optimizer.eps = number_or(o, "eps", 1e-8);
  c.optimizer.no_decay_bn_bias = bool_or(o, "noDecayBnBias", false);

  Napi::Object s = object_or_empty(js, "schedule");
  const std::string kind = string_or(s, "type", "constant");
  using K = ScheduleConfig::Kind;
  c.schedule.kind = kind == "multistep" ? K::MultiStep : kind == "cosine" ? K::Cosine : kind == "onecycle" ? K::OneCycle
                  : kind == "plateau" ? K::Plateau : K::Constant;
  c.schedule.base_lr = number_or(s, "baseLr", 0.1);
  c.schedule.total_iterations = int_or(s, "totalIterations", c.total_iterations);
  c.schedule.iterations_per_epoch = int_or(s, "iterationsPerEpoch", 1);
  if (s.Has("milestones")) c.schedule.milestones = shape_from_js(s.Get("milestones"), "milestones");
  c.schedule.milestones_in_epochs = bool_or(s, "milestonesInEpochs", false);
  c.schedule.gamma = number_or(s, "gamma", 0.1);
  c.schedule.min_lr = number_or(s, "minLr", 0);
  c.schedule.max_lr = number_or(s, "maxLr", c.schedule.base_lr);
  c.schedule.pct_start = number_or(s, "pctStart", 0.3);
  c.schedule.div_factor = number_or(s, "divFactor", 25);
  c.schedule.final_div_factor = number_or(s, "finalDivFactor", 1e4);
  c.schedule.plateau_factor = number_or(s, "factor", 0.1);
  c.schedule.plateau_patience = int_or(s, "patience", 10);
  c.schedule.plateau_threshold = number_or(s, "threshold", 1e-4);
  c.schedule.plateau_cooldown = int_or(s, "cooldown", 0);
  c.schedule.warmup_iterations = int_or(s, "warmupIterations", 0);
  c.schedule.warmup_start_factor = number_or(s, "warmupStartFactor", 0.1);
  c.schedule.error_warmup = bool_or(s, "errorWarmup", false);
  c.schedule.error_warmup_lr = number_or(s, "errorWarmupLr", 0.01);
  c.schedule.error_warmup_threshold = number_or(s, "errorWarmupThreshold", 0.8);

  Napi::Object st = object_or_empty(js, "scheduleState");
  c.schedule_state.warmed_up = bool_or(st, "warmedUp", false);
  c.schedule_state.plateau_scale = number_or(st, "plateauScale", 1.0);
  c.schedule_state.plateau_best = number_or(st, "plateauBest", std::numeric_limits<double>::infinity());
  c.schedule_state.plateau_bad = int_or(st, "plateauBad", 0);
  c.schedule_state.plateau_cooldown_left = int_or(st, "plateauCooldownLeft", 0);

  Napi::Object em = object_or_empty(js, "epochMeter");
  c.epoch_meter.loss_sum = number_or(em, "lossSum", 0);
  c.epoch_meter.wrong = int_or(em, "wrong", 0);
  c.epoch_meter.images = int_or(em, "images", 0);
  c.augment = augment_from_js(object_or_empty(js, "augment"));
  c.augment.channels_last = c.channels_last;
  std::vector<Napi::Value> keep;  // cloned above: nothing to keep alive past this call
  c.optimizer_state = named_tensors_from_js(js.Get("optimizerState"), keep);
  return c;
}

Napi::Object metrics_to_js(Napi::Env env, const EvalMetrics& m) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("split", m.split);
  o.Set("count", static_cast<double>(m.count));
  o.Set("loss", m.loss);
  o.Set("top1Error", m.top1_error);
  o.Set("top5Error", m.top5_error);
  o.Set("perClassAccuracy", doubles_to_js(env, m.per_class_accuracy));
  Napi::Array rows = Napi::Array::New(env, m.num_classes);
  for (int64_t r = 0; r < m.num_classes; ++r) {
    Napi::Array row = Napi::Array::New(env, m.num_classes);
    for (int64_t c = 0; c < m.num_classes; ++c) row.Set(static_cast<uint32_t>(c), static_cast<double>(m.confusion[r * m.num_classes + c]));
    rows.Set(static_cast<uint32_t>(r), row);
  }
  o.Set("confusion", rows);
  return o;
}


Napi::Object state_to_js(Napi::Env env, const TrainState& s) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("iteration", static_cast<double>(s.iteration));
  o.Set("epoch", static_cast<double>(s.epoch));
  Napi::Object sched = Napi::Object::New(env);
  sched.Set("warmedUp", s.schedule.warmed_up);
  sched.Set("plateauScale", s.schedule.plateau_scale);
  sched.Set("plateauBest", s.schedule.plateau_best);
  sched.Set("plateauBad", static_cast<double>(s.schedule.plateau_bad));
  sched.Set("plateauCooldownLeft", static_cast<double>(s.schedule.plateau_cooldown_left));
  o.Set("schedule", sched);
  o.Set("optimizerSteps", static_cast<double>(s.optimizer_steps));
  Napi::Object meter = Napi::Object::New(env);
  meter.Set("lossSum", s.epoch_meter.loss_sum);
  meter.Set("wrong", static_cast<double>(s.epoch_meter.wrong));
  meter.Set("images", static_cast<double>(s.epoch_meter.images));
  o.Set("epochMeter", meter);
  o.Set("lossScale", s.loss_scale);
  o.Set("model", named_tensors_to_js(env, s.model));
  o.Set("optimizer", named_tensors_to_js(env, s.optimizer));
  o.Set("cpuRng", typed_array_of(env, s.cpu_rng));
  Napi::Array cuda = Napi::Array::New(env, s.cuda_rng.size());
  for (size_t i = 0; i < s.cuda_rng.size(); ++i) cuda.Set(static_cast<uint32_t>(i), typed_array_of(env, s.cuda_rng[i]));
  o.Set("cudaRng", cuda);
  return o;
}

Napi::Object event_to_js(Napi::Env env, const TrainEvent& e) {
  static const char* kinds[] = {"iteration", "epoch", "evaluation", "checkpoint"};
  Napi::Object o = Napi::Object::New(env);
  o.Set("kind", kinds[static_cast<int>(e.kind)]);
  o.Set("iteration", static_cast<double>(e.iteration));
  o.Set("epoch", static_cast<double>(e.epoch));
  o.Set("lr", e.lr);
  o.Set("elapsedSeconds", e.elapsed_seconds);
  o.Set("etaSeconds", e.eta_seconds);
  if (e.kind == TrainEvent::Kind::Iteration || e.kind == TrainEvent::Kind::Epoch) {
    o.Set("loss", e.loss);
    o.Set("trainError", e.train_error);
    o.Set("imagesPerSecond", e.images_per_second);
    o.Set("dataWaitSeconds", e.data_wait_seconds);
  }
  if (e.loss_scale > 0) o.Set("lossScale", e.loss_scale);
  if (!e.evaluations.empty()) {
    Napi::Object evals = Napi::Object::New(env);
    for (const auto& m : e.evaluations) evals.Set(m.split, metrics_to_js(env, m));
    o.Set("evaluations", evals);
  }
  if (!e.grad_norms.empty() || !e.response_stds.empty()) {
    Napi::Object d = Napi::Object::New(env);
    d.Set("gradNorms", doubles_to_js(env, e.grad_norms));
    d.Set("responseStds", doubles_to_js(env, e.response_stds));
    o.Set("diagnostics", d);
  }
  if (e.state) o.Set("state", state_to_js(env, *e.state));
  return o;
}

Napi::Object result_to_js(Napi::Env env, const TrainResult& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("aborted", r.aborted);
  o.Set("iteration", static_cast<double>(r.iteration));
  o.Set("epoch", static_cast<double>(r.epoch));
  o.Set("elapsedSeconds", r.elapsed_seconds);
  o.Set("imagesPerSecond", r.images_per_second);
  o.Set("lr", r.final_lr);
  Napi::Object evals = Napi::Object::New(env);
  for (const auto& m : r.evaluations) evals.Set(m.split, metrics_to_js(env, m));
  o.Set("evaluations", evals);
  if (r.state) o.Set("state", state_to_js(env, *r.state));
  return o;
}

}  // namespace rt::js
