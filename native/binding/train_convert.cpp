#include "binding/train_convert.h"

#include <cmath>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "binding/convert.h"

namespace rt::js {

namespace {

Napi::Array doubles_to_js(Napi::Env env, const std::vector<double>& values) {
  Napi::Array out = Napi::Array::New(env, values.size());
  for (size_t i = 0; i < values.size(); ++i) out.Set(static_cast<uint32_t>(i), values[i]);
  return out;
}

// ---- the field tables: each native setting once, by its JS name; conversion follows the member's type ----
// A setting of TrainConfig (native/train/config.h) is one line here. `Reader` fills a struct from the facade's
// object (every key required, a wrong type a TypeError naming the key), `Describer` lists the fields for
// trainConfigFields(), which test/integration/native-fields.test.ts compares with what lib/train/resolve.ts builds.

const std::vector<std::pair<const char*, TrainConfig::Loss>>& choices(TrainConfig::Loss) {
  static const std::vector<std::pair<const char*, TrainConfig::Loss>> c = {
      {"cross-entropy", TrainConfig::Loss::CrossEntropy}, {"bce", TrainConfig::Loss::BinaryCrossEntropy}};
  return c;
}

const std::vector<std::pair<const char*, OptimizerConfig::Kind>>& choices(OptimizerConfig::Kind) {
  static const std::vector<std::pair<const char*, OptimizerConfig::Kind>> c = {{"sgd", OptimizerConfig::Kind::SGD},
                                                                               {"adamw", OptimizerConfig::Kind::AdamW},
                                                                               {"lamb", OptimizerConfig::Kind::Lamb}};
  return c;
}
const std::vector<std::pair<const char*, ScheduleConfig::Kind>>& choices(ScheduleConfig::Kind) {
  using K = ScheduleConfig::Kind;
  static const std::vector<std::pair<const char*, K>> c = {{"constant", K::Constant},
                                                           {"multistep", K::MultiStep},
                                                           {"cosine", K::Cosine},
                                                           {"onecycle", K::OneCycle},
                                                           {"plateau", K::Plateau}};
  return c;
}
const std::vector<std::pair<const char*, NormKind>>& choices(NormKind) {
  static const std::vector<std::pair<const char*, NormKind>> c = {
      {"none", NormKind::None}, {"per-pixel", NormKind::PerPixel}, {"per-channel", NormKind::PerChannel}};
  return c;
}
const std::vector<std::pair<const char*, AutoAugmentKind>>& choices(AutoAugmentKind) {
  static const std::vector<std::pair<const char*, AutoAugmentKind>> c = {
      {"none", AutoAugmentKind::None},
      {"trivial-augment-wide", AutoAugmentKind::TrivialAugmentWide},
      {"rand-augment", AutoAugmentKind::RandAugment},
      {"timm-rand-augment", AutoAugmentKind::TimmRandAugment}};
  return c;
}
const std::vector<std::pair<const char*, TimmResample>>& choices(TimmResample) {
  static const std::vector<std::pair<const char*, TimmResample>> c = {
      {"bilinear", TimmResample::Bilinear}, {"bicubic", TimmResample::Bicubic}, {"random", TimmResample::Random}};
  return c;
}

const std::vector<std::pair<const char*, Precision>>& choices(Precision) {
  static const std::vector<std::pair<const char*, Precision>> c = {
      {"float32", Precision::Float32}, {"bfloat16", Precision::BFloat16}, {"float16", Precision::Float16}};
  return c;
}
const std::vector<std::pair<const char*, DistBackend>>& choices(DistBackend) {
  static const std::vector<std::pair<const char*, DistBackend>> c = {{"gloo", DistBackend::Gloo},
                                                                     {"nccl", DistBackend::Nccl}};
  return c;
}
const std::vector<const char*> kMetricNames = {"val_loss", "val_error", "test_loss", "test_error", "train_loss"};
const std::vector<const char*> kEarlyStopMetrics = {"", "val_loss", "val_error", "test_loss", "test_error"};

template <class V>
void fields(V& v, OptimizerConfig& c) {
  v("type", c.kind);
  v("momentum", c.momentum);
  v("nesterov", c.nesterov);
  v("weightDecay", c.weight_decay);
  v("beta1", c.beta1);
  v("beta2", c.beta2);
  v("eps", c.eps);
  v("noDecayBnBias", c.no_decay_bn_bias);
  v("maxGradNorm", c.max_grad_norm);
  v("trustClip", c.trust_clip);
  v("alwaysAdapt", c.always_adapt);
}

template <class V>
void fields(V& v, MixConfig& c) {
  v("mixupAlpha", c.mixup_alpha);
  v("cutmixAlpha", c.cutmix_alpha);
  v("prob", c.prob);
  v("switchProb", c.switch_prob);
  v("correctLam", c.correct_lam);
}

template <class V>
void fields(V& v, ScheduleConfig& c) {
  v("type", c.kind);
  v("baseLr", c.base_lr);
  v("totalIterations", c.total_iterations);
  v("iterationsPerEpoch", c.iterations_per_epoch);
  v("milestones", c.milestones);
  v("milestonesInEpochs", c.milestones_in_epochs);
  v("gamma", c.gamma);
  v("minLr", c.min_lr);
  v("maxLr", c.max_lr);
  v("pctStart", c.pct_start);
  v("divFactor", c.div_factor);
  v("finalDivFactor", c.final_div_factor);
  v("factor", c.plateau_factor);
  v("patience", c.plateau_patience);
  v("threshold", c.plateau_threshold);
  v("cooldown", c.plateau_cooldown);
  v("warmupIterations", c.warmup_iterations);
  v("warmupStartFactor", c.warmup_start_factor);
  v("errorWarmup", c.error_warmup);
  v("errorWarmupLr", c.error_warmup_lr);
  v("errorWarmupThreshold", c.error_warmup_threshold);
}

template <class V>
void fields(V& v, ScheduleState& c) {
  v("warmedUp", c.warmed_up);
  v("plateauScale", c.plateau_scale);
  v("plateauBest", c.plateau_best);
  v("plateauBad", c.plateau_bad);
  v("plateauCooldownLeft", c.plateau_cooldown_left);
}

template <class V>
void fields(V& v, AutoAugmentConfig& c) {
  v("kind", c.kind);
  v("numOps", c.num_ops);
  v("magnitude", c.magnitude);
  v("numBins", c.num_bins);
  v("magnitudeStd", c.magnitude_std);
  v("prob", c.prob);
  v("increasing", c.increasing);
  v("resample", c.resample);
  v("fill", c.fill);
}

template <class V>
void fields(V& v, EraseConfig& c) {
  v("prob", c.prob);
  v("scaleMin", c.scale_min);
  v("scaleMax", c.scale_max);
  v("ratioMin", c.ratio_min);
  v("ratioMax", c.ratio_max);
  v("randomValue", c.random_value);
  v("value", c.value);
}

template <class V>
void fields(V& v, AugmentConfig& c) {
  v("pad", c.pad);
  v("flip", c.flip);
  v("randomResizedCrop", c.random_resized_crop);
  v("scaleMin", c.scale_min);
  v("scaleMax", c.scale_max);
  v("ratioMin", c.ratio_min);
  v("ratioMax", c.ratio_max);
  v("outHeight", c.out_height);
  v("outWidth", c.out_width);
  v("evalHeight", c.eval_height);
  v("evalWidth", c.eval_width);
  v("norm", c.norm);
  v.normalization(c);  // mean (with meanShape) and std, present as the normalisation needs them
  v("autoAugment", c.auto_augment);
  v("erase", c.erase);
  v("channelsLast", c.channels_last);
}

template <class V>
void fields(V& v, EarlyStopState& c) {
  v("best", c.best);  // > 1e307: none yet (JSON has no Infinity)
  v("bestIteration", c.best_iteration);
  v("bad", c.bad);
}

template <class V>
void fields(V& v, EarlyStopConfig& c) {
  v.choice("metric", c.metric, kEarlyStopMetrics);
  v("patience", c.patience);
  v("minDelta", c.min_delta);
  v("restoreBest", c.restore_best);
  v("state", c.state);
}

template <class V>
void fields(V& v, MeterSums& c) {
  v("lossSum", c.loss_sum);
  v("wrong", c.wrong);
  v("images", c.images);
}

template <class V>
void fields(V& v, DistConfig& c) {
  v("join", c.join);
  v("backend", c.backend);
  v("rank", c.rank);
  v("worldSize", c.world_size);
  v("masterAddr", c.master_addr);
  v("masterPort", c.master_port);
  v("timeoutMs", c.timeout_ms);
  v("agentStore", c.agent_store);
  v("storePrefix", c.store_prefix);
  v("fingerprint", c.fingerprint);
}

template <class V>
void fields(V& v, TrainConfig& c) {
  v("batchSize", c.batch_size);
  v("totalIterations", c.total_iterations);
  v("startIteration", c.start_iteration);
  v("seed", c.seed);
  v("shuffle", c.shuffle);
  v("dropLast", c.drop_last);
  v("repeats", c.repeats);
  v("repeatsRound", c.repeats_round);
  v("deterministic", c.deterministic);
  v("cudnnBenchmark", c.cudnn_benchmark);
  v("optimizer", c.optimizer);
  v("schedule", c.schedule);
  v("scheduleState", c.schedule_state);
  v("augment", c.augment);
  v("labelSmoothing", c.label_smoothing);
  v("loss", c.loss);
  v("bceTargetThreshold", c.bce_target_threshold);
  v("mix", c.mix);
  v("clipGradNorm", c.clip_grad_norm);
  v("freezeBatchNorm", c.freeze_batch_norm);
  v("accumulate", c.accumulate);
  v("logEvery", c.log_every);
  v("evalEveryIterations", c.eval_every_iterations);
  v("evalEveryEpochs", c.eval_every_epochs);
  v("evalBatchSize", c.eval_batch_size);
  v.choice("plateauMetric", c.plateau_metric, kMetricNames);
  v("diagnostics", c.diagnostics);
  v("threads", c.threads);
  v("checkpointEveryIterations", c.checkpoint_every_iterations);
  v("stateAtEnd", c.state_at_end);
  v("stateOnEvaluation", c.state_on_evaluation);
  v("epochMeter", c.epoch_meter);
  v("channelsLast", c.channels_last);
  v("cudaGraph", c.cuda_graph);
  v("precision", c.precision);
  v("optimizerState", c.optimizer_state);
  v("optimizerSteps", c.optimizer_steps);
  v("lossScale", c.loss_scale);
  v("distributed", c.dist);
  v("syncBatchNorm", c.sync_batch_norm);
  v("earlyStop", c.early_stop);
  v("emaDecay", c.ema_decay);
  v("emaState", c.ema_state);
}

template <class T, class = void>
struct has_fields : std::false_type {};
struct Probe {
  template <class U>
  void operator()(const char*, U&) {}
  void choice(const char*, std::string&, const std::vector<const char*>&) {}
  void normalization(AugmentConfig&) {}
};
template <class T>
struct has_fields<T, std::void_t<decltype(fields(std::declval<Probe&>(), std::declval<T&>()))>> : std::true_type {};

using NamedTensorList = std::vector<std::pair<std::string, torch::Tensor>>;
using StringPairs = std::vector<std::pair<std::string, std::string>>;

class Reader {
 public:
  explicit Reader(const Fields& js) : js_(js) {}

  void operator()(const char* key, bool& out) { out = js_.boolean(key); }
  void operator()(const char* key, double& out) { out = js_.number(key); }
  void operator()(const char* key, int64_t& out) { out = js_.integer(key); }
  void operator()(const char* key, int& out) { out = static_cast<int>(js_.integer(key)); }
  void operator()(const char* key, uint64_t& out) { out = static_cast<uint64_t>(js_.integer(key)); }
  void operator()(const char* key, std::string& out) { out = js_.string(key); }
  void operator()(const char* key, std::vector<int64_t>& out) { out = shape_from_js(js_.value(key), key); }
  void operator()(const char* key, NamedTensorList& out) {
    std::vector<Napi::Value> keep;  // copied: nothing to keep alive past this call
    out = named_tensors_from_js(js_.value(key), keep);
  }
  void operator()(const char* key, StringPairs& out) {
    Napi::Value list = js_.value(key);
    if (!list.IsArray()) throw Napi::TypeError::New(list.Env(), std::string(key) + " must be an array");
    Napi::Array pairs = list.As<Napi::Array>();
    for (uint32_t i = 0; i < pairs.Length(); ++i) {
      const auto kv = strings_from_js(pairs.Get(i), key);
      if (kv.size() != 2) throw Napi::TypeError::New(list.Env(), std::string(key) + " holds [key, value] pairs");
      out.emplace_back(kv[0], kv[1]);
    }
  }
  template <class E, std::enable_if_t<std::is_enum_v<E>, int> = 0>
  void operator()(const char* key, E& out) {
    const std::string v = js_.string(key);
    std::string names;
    for (const auto& [name, value] : choices(E{})) {
      if (v == name) {
        out = value;
        return;
      }
      names += (names.empty() ? "" : ", ") + std::string(name);
    }
    unknown(key, v, names);
  }
  template <class S, std::enable_if_t<has_fields<S>::value, int> = 0>
  void operator()(const char* key, S& out) {
    Reader inner(js_.object(key));
    fields(inner, out);
  }
  void choice(const char* key, std::string& out, const std::vector<const char*>& names) {
    out = js_.string(key);
    std::string all;
    for (const char* name : names) {
      if (out == name) return;
      all += (all.empty() ? "" : ", ") + std::string(name);
    }
    unknown(key, out, all);
  }
  void normalization(AugmentConfig& c) {
    if (c.norm == NormKind::None) return;
    c.mean =
        view_of(js_.value("mean"), shape_from_js(js_.value("meanShape"), "augment.meanShape"), "augment.mean").clone();
    if (c.norm == NormKind::PerChannel) c.std = view_of(js_.value("std"), {c.mean.numel()}, "augment.std").clone();
  }

 private:
  [[noreturn]] void unknown(const char* key, const std::string& value, const std::string& names) {
    throw Napi::TypeError::New(js_.raw().Env(),
                               js_.name(key) + ": unknown value \"" + value + "\" (one of " + names + ")");
  }
  const Fields& js_;
};

// What each field is, as the test reads it: "boolean", "number", "integer", "string", "integer[]", "tensors",
// "string pairs", "float array?" (present only with a normalisation), a nested object, or the names of a choice.
class Describer {
 public:
  explicit Describer(Napi::Env env) : env_(env), out_(Napi::Object::New(env)) {}
  Napi::Object result() const { return out_; }

  void operator()(const char* key, bool&) { out_.Set(key, "boolean"); }
  void operator()(const char* key, double&) { out_.Set(key, "number"); }
  void operator()(const char* key, int64_t&) { out_.Set(key, "integer"); }
  void operator()(const char* key, int&) { out_.Set(key, "integer"); }
  void operator()(const char* key, uint64_t&) { out_.Set(key, "integer"); }
  void operator()(const char* key, std::string&) { out_.Set(key, "string"); }
  void operator()(const char* key, std::vector<int64_t>&) { out_.Set(key, "integer[]"); }
  void operator()(const char* key, NamedTensorList&) { out_.Set(key, "tensors"); }
  void operator()(const char* key, StringPairs&) { out_.Set(key, "string pairs"); }
  template <class E, std::enable_if_t<std::is_enum_v<E>, int> = 0>
  void operator()(const char* key, E&) {
    std::vector<const char*> names;
    for (const auto& choice : choices(E{})) names.push_back(choice.first);
    out_.Set(key, names_to_js(names));
  }
  template <class S, std::enable_if_t<has_fields<S>::value, int> = 0>
  void operator()(const char* key, S& value) {
    Describer inner(env_);
    fields(inner, value);
    out_.Set(key, inner.result());
  }
  void choice(const char* key, std::string&, const std::vector<const char*>& names) {
    out_.Set(key, names_to_js(names));
  }
  void normalization(AugmentConfig&) {
    out_.Set("mean", "float array?");
    out_.Set("meanShape", "integer[]?");
    out_.Set("std", "float array?");
  }

 private:
  Napi::Array names_to_js(const std::vector<const char*>& names) {
    Napi::Array a = Napi::Array::New(env_, names.size());
    for (size_t i = 0; i < names.size(); ++i) a.Set(static_cast<uint32_t>(i), names[i]);
    return a;
  }
  Napi::Env env_;
  Napi::Object out_;
};

}  // namespace

AugmentConfig augment_from_js(const Fields& js) {
  AugmentConfig a;
  Reader reader(js);
  fields(reader, a);
  return a;
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
  Reader reader(js);
  fields(reader, c);
  if (c.early_stop.state.best > 1e307) c.early_stop.state.best = std::numeric_limits<double>::infinity();
  return c;
}

Napi::Object train_config_fields(Napi::Env env) {
  TrainConfig c;
  Describer describer(env);
  fields(describer, c);
  return describer.result();
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
  if (!e.mix.empty()) {
    Napi::Array mix = Napi::Array::New(env, e.mix.size());
    for (size_t k = 0; k < e.mix.size(); ++k) {
      const MixParams& p = e.mix[k];
      Napi::Object m = Napi::Object::New(env);
      m.Set("lam", p.lam);
      m.Set("cutmix", p.cutmix);
      if (p.cutmix) {
        Napi::Array box = Napi::Array::New(env, 4);
        const int64_t corners[4] = {p.yl, p.yh, p.xl, p.xh};
        for (uint32_t j = 0; j < 4; ++j) box.Set(j, static_cast<double>(corners[j]));
        m.Set("box", box);
      }
      mix.Set(static_cast<uint32_t>(k), m);
    }
    o.Set("mix", mix);
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
