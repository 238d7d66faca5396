#include "binding/train_convert.h"

#include <cmath>
#include <limits>

#include "binding/convert.h"

namespace rt::js {

namespace {

Napi::Array doubles_to_js(Napi::Env env, const std::vector<double>& values) {
  Napi::Array out = Napi::Array::New(env, values.size());
  for (size_t i = 0; i < values.size(); ++i) out.Set(static_cast<uint32_t>(i), values[i]);
  return out;
}

OptimizerConfig optimizer_from_js(const Fields& o) {
  OptimizerConfig c;
  c.kind = o.choice<OptimizerConfig::Kind>(
      "type", {{"sgd", OptimizerConfig::Kind::SGD}, {"adamw", OptimizerConfig::Kind::AdamW}});
  c.momentum = o.number("momentum");
  c.nesterov = o.boolean("nesterov");
  c.weight_decay = o.number("weightDecay");
  c.beta1 = o.number("beta1");
  c.beta2 = o.number("beta2");
  c.eps = o.number("eps");
  c.no_decay_bn_bias = o.boolean("noDecayBnBias");
  return c;
}

ScheduleConfig schedule_from_js(const Fields& s) {
  using K = ScheduleConfig::Kind;
  ScheduleConfig c;
  c.kind = s.choice<K>("type", {{"constant", K::Constant},
                                {"multistep", K::MultiStep},
                                {"cosine", K::Cosine},
                                {"onecycle", K::OneCycle},
                                {"plateau", K::Plateau}});
  c.base_lr = s.number("baseLr");
  c.total_iterations = s.integer("totalIterations");
  c.iterations_per_epoch = s.integer("iterationsPerEpoch");
  c.milestones = shape_from_js(s.value("milestones"), "schedule.milestones");
  c.milestones_in_epochs = s.boolean("milestonesInEpochs");
  c.gamma = s.number("gamma");
  c.min_lr = s.number("minLr");
  c.max_lr = s.number("maxLr");
  c.pct_start = s.number("pctStart");
  c.div_factor = s.number("divFactor");
  c.final_div_factor = s.number("finalDivFactor");
  c.plateau_factor = s.number("factor");
  c.plateau_patience = s.integer("patience");
  c.plateau_threshold = s.number("threshold");
  c.plateau_cooldown = s.integer("cooldown");
  c.warmup_iterations = s.integer("warmupIterations");
  c.warmup_start_factor = s.number("warmupStartFactor");
  c.error_warmup = s.boolean("errorWarmup");
  c.error_warmup_lr = s.number("errorWarmupLr");
  c.error_warmup_threshold = s.number("errorWarmupThreshold");
  return c;
}

ScheduleState schedule_state_from_js(const Fields& st) {
  ScheduleState c;
  c.warmed_up = st.boolean("warmedUp");
  c.plateau_scale = st.number("plateauScale");
  c.plateau_best = st.number("plateauBest");
  c.plateau_bad = st.integer("plateauBad");
  c.plateau_cooldown_left = st.integer("plateauCooldownLeft");
  return c;
}

DistConfig dist_from_js(const Fields& d) {
  DistConfig c;
  c.join = d.boolean("join");
  c.backend = d.choice<DistBackend>("backend", {{"gloo", DistBackend::Gloo}, {"nccl", DistBackend::Nccl}});
  c.rank = d.integer("rank");
  c.world_size = d.integer("worldSize");
  c.master_addr = d.string("masterAddr");
  c.master_port = d.integer("masterPort");
  c.timeout_ms = d.integer("timeoutMs");
  Napi::Value fingerprint = d.value("fingerprint");
  if (!fingerprint.IsArray()) throw Napi::TypeError::New(fingerprint.Env(), "distributed.fingerprint must be an array");
  Napi::Array pairs = fingerprint.As<Napi::Array>();
  for (uint32_t i = 0; i < pairs.Length(); ++i) {
    const auto kv = strings_from_js(pairs.Get(i), "distributed.fingerprint[i]");
    if (kv.size() != 2)
      throw Napi::TypeError::New(fingerprint.Env(), "distributed.fingerprint holds [key, value] pairs");
    c.fingerprint.emplace_back(kv[0], kv[1]);
  }
  return c;
}

}  // namespace

AugmentConfig augment_from_js(const Fields& js) {
  AugmentConfig a;
  a.pad = js.integer("pad");
  a.flip = js.boolean("flip");
  a.random_resized_crop = js.boolean("randomResizedCrop");
  a.scale_min = js.number("scaleMin");
  a.scale_max = js.number("scaleMax");
  a.ratio_min = js.number("ratioMin");
  a.ratio_max = js.number("ratioMax");
  a.out_height = js.integer("outHeight");
  a.out_width = js.integer("outWidth");
  a.norm = js.choice<NormKind>(
      "norm", {{"none", NormKind::None}, {"per-pixel", NormKind::PerPixel}, {"per-channel", NormKind::PerChannel}});
  if (a.norm != NormKind::None) {
    a.mean =
        view_of(js.value("mean"), shape_from_js(js.value("meanShape"), "augment.meanShape"), "augment.mean").clone();
    if (a.norm == NormKind::PerChannel) a.std = view_of(js.value("std"), {a.mean.numel()}, "augment.std").clone();
  }
  a.channels_last = js.boolean("channelsLast");
  return a;
}

// { best, bestIteration, bad }; best > 1e307 stands for "none yet" (JSON has no Infinity).
EarlyStopState early_stop_state_from_js(const Fields& js) {
  EarlyStopState s;
  const double best = js.number("best");
  s.best = best > 1e307 ? std::numeric_limits<double>::infinity() : best;
  s.best_iteration = js.integer("bestIteration");
  s.bad = js.integer("bad");
  return s;
}

Napi::Object early_stop_state_to_js(Napi::Env env, const EarlyStopState& s) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("best", std::isfinite(s.best) ? s.best : 1e308);
  o.Set("bestIteration", static_cast<double>(s.best_iteration));
  o.Set("bad", static_cast<double>(s.bad));
  return o;
}

TrainConfig train_config_from_js(const Fields& js) {
  TrainConfig c;
  c.batch_size = js.integer("batchSize");
  c.total_iterations = js.integer("totalIterations");
  c.start_iteration = js.integer("startIteration");
  c.seed = static_cast<uint64_t>(js.integer("seed"));
  c.shuffle = js.boolean("shuffle");
  c.drop_last = js.boolean("dropLast");
  c.deterministic = js.boolean("deterministic");
  c.cudnn_benchmark = js.boolean("cudnnBenchmark");
  c.optimizer = optimizer_from_js(js.object("optimizer"));
  c.schedule = schedule_from_js(js.object("schedule"));
  c.schedule_state = schedule_state_from_js(js.object("scheduleState"));
  c.augment = augment_from_js(js.object("augment"));
  c.label_smoothing = js.number("labelSmoothing");
  c.clip_grad_norm = js.number("clipGradNorm");
  c.freeze_batch_norm = js.boolean("freezeBatchNorm");
  c.accumulate = js.integer("accumulate");
  c.log_every = js.integer("logEvery");
  c.eval_every_iterations = js.integer("evalEveryIterations");
  c.eval_every_epochs = js.integer("evalEveryEpochs");
  c.eval_batch_size = js.integer("evalBatchSize");
  c.plateau_metric = js.choice<std::string>("plateauMetric", {{"val_loss", "val_loss"},
                                                              {"val_error", "val_error"},
                                                              {"test_loss", "test_loss"},
                                                              {"test_error", "test_error"},
                                                              {"train_loss", "train_loss"}});
  c.diagnostics = js.boolean("diagnostics");
  c.threads = static_cast<int>(js.integer("threads"));
  c.checkpoint_every_iterations = js.integer("checkpointEveryIterations");
  c.state_at_end = js.boolean("stateAtEnd");
  c.state_on_evaluation = js.boolean("stateOnEvaluation");
  const Fields meter = js.object("epochMeter");
  c.epoch_meter.loss_sum = meter.number("lossSum");
  c.epoch_meter.wrong = meter.integer("wrong");
  c.epoch_meter.images = meter.integer("images");
  c.channels_last = js.boolean("channelsLast");
  c.augment.channels_last = c.channels_last;
  c.cuda_graph = js.boolean("cudaGraph");
  c.precision = js.choice<Precision>(
      "precision",
      {{"float32", Precision::Float32}, {"bfloat16", Precision::BFloat16}, {"float16", Precision::Float16}});
  std::vector<Napi::Value> keep;  // cloned: nothing to keep alive past this call
  c.optimizer_state = named_tensors_from_js(js.value("optimizerState"), keep);
  c.optimizer_steps = js.integer("optimizerSteps");
  c.loss_scale = js.number("lossScale");
  c.dist = dist_from_js(js.object("distributed"));
  c.sync_batch_norm = js.boolean("syncBatchNorm");
  const Fields es = js.object("earlyStop");
  c.early_stop.metric = es.string("metric");
  c.early_stop.patience = es.integer("patience");
  c.early_stop.min_delta = es.number("minDelta");
  c.early_stop.restore_best = es.boolean("restoreBest");
  c.early_stop.state = early_stop_state_from_js(es.object("state"));
  c.ema_decay = js.number("emaDecay");
  c.ema_state = named_tensors_from_js(js.value("emaState"), keep);
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
    for (int64_t c = 0; c < m.num_classes; ++c)
      row.Set(static_cast<uint32_t>(c), static_cast<double>(m.confusion[r * m.num_classes + c]));
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
  o.Set("earlyStop", early_stop_state_to_js(env, s.early_stop));
  o.Set("ema", named_tensors_to_js(env, s.ema));
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
  o.Set("stoppedEarly", r.stopped_early);
  o.Set("restoredBest", r.restored_best);
  o.Set("engine", r.engine);
  Napi::Object phases = Napi::Object::New(env);
  phases.Set("dataWait", r.phases.data_wait);
  phases.Set("forward", r.phases.forward);
  phases.Set("backward", r.phases.backward);
  phases.Set("optimizer", r.phases.optimizer);
  phases.Set("other", r.phases.other);
  phases.Set("gather", r.phases.gather);
  phases.Set("augment", r.phases.augment);
  o.Set("phases", phases);
  o.Set("earlyStop", early_stop_state_to_js(env, r.early_stop));
  if (!r.ema.empty()) o.Set("ema", named_tensors_to_js(env, r.ema));
  return o;
}

}  // namespace rt::js
