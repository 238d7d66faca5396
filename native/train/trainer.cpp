#include "train/trainer.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <torch/nn/functional/loss.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/utils/clip_grad.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <map>
#include <optional>
#include <tuple>

#include "common/error.h"
#include "common/oom.h"
#include "data/prefetcher.h"
#include "device/cuda.h"
#include "device/runtime.h"
#include "models/sync_batch_norm.h"
#include "train/graphed_step.h"
#include "train/optimizer.h"
#include "train/precision.h"

namespace rt {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

void set_params_channels_last(ResNet& net) {
  torch::NoGradGuard no_grad;
  for (auto& p : net->parameters())
    if (p.dim() == 4) p.set_data(p.contiguous(torch::MemoryFormat::ChannelsLast));
}

// The error that stops a run whose loss or gradients stopped being finite.
Error diverged(int64_t it, const torch::Tensor& loss, bool applied = false) {
  const double value = loss.defined() ? loss.detach().to(torch::kCPU).item<double>() : NAN;
  // oneDNN's ReLU maps NaN to 0, so a NaN input can leave the loss finite and only the gradients not.
  const std::string what = std::isfinite(value) ? "a gradient is not finite (the loss is " + std::to_string(value) + ")"
                                                : "the loss is " + std::to_string(value);
  return Error("ERR_DIVERGED",
               "training diverged at iteration " + std::to_string(it + 1) + ": " + what + ". " +
                   (applied ? "The step ran inside a CUDA graph, so the weights took it in. "
                            : "The step was not applied: the parameters are those before it (BatchNorm's running "
                              "statistics did take this batch in). ") +
                   "Look for NaN or infinite values in the data, or lower lr or lengthen the warmup.");
}

const EvalMetrics* find_split(const std::vector<EvalMetrics>& evals, const std::string& split) {
  for (const auto& e : evals)
    if (e.split == split) return &e;
  return nullptr;
}

// The value reduce-on-plateau watches, if this evaluation has it.
std::optional<double> plateau_value(const std::string& metric, const std::vector<EvalMetrics>& evals) {
  const auto underscore = metric.find('_');
  const auto* e = find_split(evals, metric.substr(0, underscore));
  if (!e) return std::nullopt;
  return metric.substr(underscore + 1) == "loss" ? e->loss : e->top1_error;
}

}  // namespace

Trainer::Trainer(std::shared_ptr<Model> model, std::shared_ptr<BatchSource> train,
                 std::optional<TensorDataset> validation, std::optional<TensorDataset> test, TrainConfig config,
                 std::function<void(TrainEvent)> emit)
    : model_(std::move(model)),
      train_(std::move(train)),
      validation_(std::move(validation)),
      test_(std::move(test)),
      config_(std::move(config)),
      emit_(std::move(emit)) {}

// One run's working state: what the steps below share.
struct Trainer::Loop {
  Loop(const torch::Device& d, int64_t per_epoch, int64_t first, int64_t end, Optimizer&& o, LrSchedule&& s,
       LossScaler&& sc)
      : device(d),
        per_epoch(per_epoch),
        first(first),
        end(end),
        optimizer(std::move(o)),
        schedule(std::move(s)),
        scaler(std::move(sc)) {}
  torch::Device device;
  int64_t per_epoch, first, end;
  Optimizer optimizer;
  LrSchedule schedule;
  LossScaler scaler;
  std::vector<torch::Tensor> params;   // the trainable ones (loss scaling checks their gradients)
  std::vector<torch::Tensor> buffers;  // BN statistics, synchronised from rank 0 before each forward (distributed)
  std::unique_ptr<GraphedStep> graphed;
  TrainMeter window, epoch_meter, warmup_meter;
  Clock::time_point started = Clock::now(), window_started = started;
  int64_t window_images = 0, images_done = 0;
  double window_wait = 0, epoch_wait = 0;  // seconds spent waiting for batches
  double lr = 0;
  std::vector<EvalMetrics> last_evals;
  EarlyStopState early;
  bool stopped_early = false;
  std::vector<torch::Tensor> best_state;  // restore_best: the model's tensors at the best evaluation
  std::vector<torch::Tensor> ema;         // aligned with model_->state(), on the model's device
  PhaseSeconds phases;
  std::vector<MixParams> last_mix;  // the last step's mixup / cutmix draws, per pass
};

std::vector<EvalMetrics> Trainer::evaluate_all(const Loop& loop) {
  const torch::Device& device = loop.device;
  // With an EMA the evaluations are the average's: it stands in for the weights while they run.
  struct EmaSwap {
    std::vector<torch::Tensor> live, kept;
    EmaSwap(const std::vector<NamedTensor>& state, const std::vector<torch::Tensor>& ema) {
      if (ema.empty()) return;
      torch::NoGradGuard no_grad;
      for (size_t i = 0; i < state.size(); ++i) {
        live.push_back(state[i].tensor);
        kept.push_back(state[i].tensor.detach().clone());
        state[i].tensor.detach().copy_(ema[i]);
      }
    }
    ~EmaSwap() {
      torch::NoGradGuard no_grad;
      for (size_t i = 0; i < live.size(); ++i) live[i].detach().copy_(kept[i]);
    }
  } swap(model_->state(), loop.ema);
  struct Retrain {  // evaluate() puts the whole net back in training mode: frozen BN layers go back to eval
    Trainer* trainer;
    ~Retrain() {
      if (trainer->config_.freeze_batch_norm) trainer->train_mode();
    }
  } retrain{this};
  if (group_) {
    group_->broadcast(loop.buffers);  // every rank evaluates rank 0's model, BN statistics included
    // Each rank evaluates its share; the sums meet in an all-reduce. No cancel mid-way: a rank that left early
    // would leave the others waiting in it (a stop takes effect at the next iteration, on every rank).
    EvalShard shard{group_->rank(), group_->world_size(), [this](torch::Tensor& t) { group_->all_reduce_sum(t); }};
    std::vector<EvalMetrics> out;
    if (validation_)
      out.push_back(evaluate(model_->net(), *validation_, config_.augment, config_.eval_batch_size, device, "val",
                             nullptr, &shard));
    if (test_)
      out.push_back(
          evaluate(model_->net(), *test_, config_.augment, config_.eval_batch_size, device, "test", nullptr, &shard));
    return out;
  }
  std::vector<EvalMetrics> out;
  if (validation_)
    out.push_back(
        evaluate(model_->net(), *validation_, config_.augment, config_.eval_batch_size, device, "val", &cancel_));
  if (test_)
    out.push_back(evaluate(model_->net(), *test_, config_.augment, config_.eval_batch_size, device, "test", &cancel_));
  return out;
}

namespace {
// Eager steps before a CUDA graph is captured: they create the momentum buffers and settle cuDNN's choices.
constexpr int64_t kCudaGraphWarmup = 3;
// Batches prepared ahead of the step, on a thread of their own, for a GPU (the host prepares while the device
// computes). On the CPU the step's OpenMP team has every core already: a second team beside it slowed training by
// up to 10% (both wait at their barriers while the other runs), for an augmentation that takes 1% of a step.
constexpr size_t kPrefetchDepth = 2;
size_t prefetch_depth(const torch::Device& device) {
  const char* forced = std::getenv("RESNET_TORCH_PREFETCH_THREAD");
  if (forced && *forced) return std::string(forced) == "1" ? kPrefetchDepth : 0;
  return device.is_cpu() ? 0 : kPrefetchDepth;
}
}  // namespace

std::shared_ptr<TrainState> Trainer::snapshot(const Loop& loop, int64_t iteration) {
  auto s = std::make_shared<TrainState>();
  s->iteration = iteration;
  s->epoch = iteration / train_->batches_per_epoch();
  s->schedule = loop.schedule.state();
  s->optimizer_steps = loop.optimizer.steps();
  s->loss_scale = loop.scaler.value();
  s->model = model_->state_on_cpu();
  for (auto& t : loop.optimizer.state())
    s->optimizer.push_back({t.name, t.tensor.detach().to(torch::kCPU).contiguous().clone(), false});
  s->epoch_meter = loop.epoch_meter.peek();
  s->early_stop = loop.early;
  s->ema = ema_on_cpu(loop);
  s->cpu_rng = at::detail::getDefaultCPUGenerator().get_state();
  if (at::globalContext().hasCUDA())
    for (int i = 0; i < at::detail::getCUDAHooks().getNumGPUs(); ++i)
      s->cuda_rng.push_back(
          at::globalContext().defaultGenerator(c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(i))).get_state());
  return s;
}

TrainResult Trainer::run() {
  try {
    return run_loop();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    // A collective that failed: say which rank fell behind (died or hangs), not only what the transport saw.
    if (group_ && !is_out_of_memory(e)) throw Error("ERR_DISTRIBUTED", group_->explain_failure(e.what()));
    if (!is_out_of_memory(e)) throw;
    const auto* c10_error = dynamic_cast<const c10::Error*>(&e);
    const std::string message = c10_error ? c10_error->what_without_backtrace() : e.what();
    // The process survives: cached blocks go back to the device, the model keeps its last complete step.
    release_cuda_cache_after_oom();
    throw Error("ERR_OUT_OF_MEMORY", "out of memory on " + model_->device().str() + " training with batch size " +
                                         std::to_string(config_.batch_size) + ": use a smaller batchSize" +
                                         (model_->device().is_cuda() ? ", precision bfloat16/float16" : "") + " (" +
                                         message.substr(0, message.find('\n')) + ")");
  }
}

void Trainer::configure(const torch::Device& device) {
  at::init_num_threads();
  if (config_.threads > 0) at::set_num_threads(config_.threads);
  const bool cuda = device.is_cuda();
  if (config_.deterministic) {
    at::globalContext().setDeterministicAlgorithms(true, /*warn_only=*/false);
    at::globalContext().setBenchmarkCuDNN(false);
  } else if (cuda) {
    at::globalContext().setBenchmarkCuDNN(config_.cudnn_benchmark);
  }
  if (config_.precision == Precision::Float16 && !cuda) throw invalid("float16 autocast needs a CUDA device");
  if (config_.precision == Precision::BFloat16 && !cuda)
    if (const std::string why = cpu_bfloat16_refusal(); !why.empty()) throw invalid(why);
  if (config_.precision != Precision::Float32 && model_->net()->dtype() != torch::kFloat32)
    throw invalid("mixed precision needs a float32 model");
  if (config_.cuda_graph) {
    if (!cuda) throw invalid("cudaGraph needs the model on a CUDA device");
    if (config_.diagnostics) throw invalid("cudaGraph cannot record diagnostics (they read values inside the step)");
    if (config_.precision != Precision::Float32 || model_->net()->dtype() != torch::kFloat32)
      throw invalid("cudaGraph runs in float32");
    if (!config_.drop_last) throw invalid("cudaGraph needs dropLast: every batch the same shape");
    if (config_.loss != TrainConfig::Loss::CrossEntropy || config_.mix.enabled())
      throw invalid("cudaGraph trains with the cross-entropy loss, without mixup or cutmix");
    if (model_->net()->spec().drop_path > 0.0) throw invalid("cudaGraph needs a model without dropPath");
  }
  if (config_.channels_last) set_params_channels_last(model_->net());
  if (validation_) validation_ = validation_->to(device);
  if (test_) test_ = test_->to(device);
  if (config_.dist.join) {
    if (config_.cuda_graph) throw invalid("cudaGraph does not run with distributed training");
    group_ = DistGroup::join(config_.dist);
  }
  choose_engine(device);
}

void Trainer::choose_engine(const torch::Device& device) {
  // The oneDNN path where it computes what libtorch's would; libtorch's for what it does not do (yet).
  std::string why;
  const char* forced = std::getenv("RESNET_TORCH_ONEDNN_TRAINING");
  if (!device.is_cpu())
    why = "not on the CPU";
  else if (forced && std::string(forced) == "0")
    why = "RESNET_TORCH_ONEDNN_TRAINING=0";
  else if (config_.precision != Precision::Float32)
    why = "bfloat16 autocast";
  else if (config_.freeze_batch_norm)
    why = "freezeBatchNorm (BatchNorm in eval mode)";
  else if (group_ && config_.sync_batch_norm)
    why = "syncBatchNorm (statistics over the ranks)";
  else
    why = OneDnnTraining::unsupported(*model_->net());
  if (why.empty()) onednn_ = std::make_unique<OneDnnTraining>(*model_->net());
  engine_ = why.empty() ? "onednn" : "libtorch (" + why + ")";
}

torch::Tensor Trainer::forward(const torch::Tensor& x, bool diagnose) {
  // Diagnostics (per-block responses and gradient norms) come from the blocks' own forward: that step goes there.
  if (onednn_ && !diagnose) {
    try {
      onednn_->prepare(x);
    } catch (const std::exception& e) {
      // A layer oneDNN has no implementation for on this CPU: nothing has run yet, libtorch's path takes over.
      const std::string what = e.what();
      engine_ = "libtorch (oneDNN: " + what.substr(0, what.find('\n')) + ")";
      onednn_.reset();
    }
  }
  return onednn_ && !diagnose ? onednn_->forward(x) : model_->net()->forward(x);
}

std::unique_ptr<Trainer::Loop> Trainer::start_loop(const torch::Device& device) {
  Optimizer optimizer(model_->state(), config_.optimizer);
  if (!config_.optimizer_state.empty()) optimizer.load_state(config_.optimizer_state);
  optimizer.set_steps(config_.optimizer_steps);
  config_.optimizer_state.clear();
  auto loop =
      std::make_unique<Loop>(device, train_->batches_per_epoch(), config_.start_iteration, config_.total_iterations,
                             std::move(optimizer), LrSchedule(config_.schedule, config_.schedule_state),
                             LossScaler(config_.precision == Precision::Float16, config_.loss_scale));
  for (auto& p : model_->net()->parameters())
    if (p.requires_grad()) loop->params.push_back(p);
  if (group_) {
    // As DistributedDataParallel starts: every rank takes rank 0's parameters and buffers, then averages the
    // gradients of the trainable parameters (frozen ones take no part).
    std::vector<torch::Tensor> state;
    for (const auto& t : model_->state()) {
      state.push_back(t.tensor.detach());
      if (!t.parameter) loop->buffers.push_back(t.tensor.detach());
    }
    group_->broadcast(state);
    group_->attach(loop->params);
  }
  loop->epoch_meter.restore(config_.epoch_meter);
  loop->early = config_.early_stop.state;
  if (config_.ema_decay > 0) {
    torch::NoGradGuard no_grad;
    std::map<std::string, torch::Tensor> saved(config_.ema_state.begin(), config_.ema_state.end());
    for (const auto& t : model_->state()) {
      auto it = saved.find(t.name);
      loop->ema.push_back(it != saved.end() ? it->second.to(t.tensor.device(), t.tensor.scalar_type()).clone()
                                            : t.tensor.detach().clone());
    }
    config_.ema_state.clear();
  }
  loop->lr = loop->schedule.lr(loop->first);
  return loop;
}

torch::Tensor Trainer::training_loss(const torch::Tensor& logits, const torch::Tensor& labels,
                                     const MixParams* mix) const {
  namespace F = torch::nn::functional;
  const bool bce = config_.loss == TrainConfig::Loss::BinaryCrossEntropy;
  if (!mix && !bce)
    return F::cross_entropy(logits, labels, F::CrossEntropyFuncOptions().label_smoothing(config_.label_smoothing));
  // Soft targets: timm's mixup_target (λ 1 without a mix): one-hot, off = smoothing / classes,
  // on = 1 − smoothing + off, mixed with the reversed batch's by λ.
  const torch::Tensor target =
      mix_targets(labels, logits.size(1), mix ? *mix : MixParams{}, config_.label_smoothing, logits.scalar_type());
  // timm's SoftTargetCrossEntropy: Σ −target · log_softmax, mean over the batch.
  if (!bce) return (-target * torch::log_softmax(logits, 1)).sum(1).mean();
  // timm's BinaryCrossEntropy: the targets above the threshold become 1 (and the rest 0); then
  // binary_cross_entropy_with_logits, mean over every element.
  if (config_.bce_target_threshold < 0) return F::binary_cross_entropy_with_logits(logits, target);
  return F::binary_cross_entropy_with_logits(logits, target.gt(config_.bce_target_threshold).to(logits.scalar_type()));
}

std::pair<torch::Tensor, torch::Tensor> Trainer::step(Loop& loop, const PreparedBatch& batch, int64_t it,
                                                      bool diagnose) {
  namespace F = torch::nn::functional;
  ResNet& net = model_->net();
  // Stochastic depth's masks: from the run's seed, the rank and the iteration, so that a resumed run draws the same.
  const uint64_t rank = group_ ? static_cast<uint64_t>(group_->rank()) : 0;
  net->set_drop_path_seed(derive_seed(derive_seed(config_.seed, kRank, rank), kDropPath, static_cast<uint64_t>(it)));
  if (loop.graphed) {
    auto out = loop.graphed->step(batch.x, batch.y, loop.lr);
    if (!torch::isfinite(out.second).all().item<bool>()) throw diverged(it, out.second, /*applied=*/true);
    return out;
  }
  if (config_.cuda_graph && it - loop.first >= kCudaGraphWarmup) {
    loop.graphed =
        std::make_unique<GraphedStep>(net, loop.optimizer, config_.label_smoothing, batch.x, batch.y, loop.lr);
    return loop.graphed->outputs();  // capturing ran this iteration's step
  }
  auto lap = Clock::now();
  const auto add_lap = [&lap](double& phase) {
    const auto now = Clock::now();
    phase += std::chrono::duration<double>(now - lap).count();
    lap = now;
  };
  loop.optimizer.zero_grad();
  add_lap(loop.phases.optimizer);
  if (group_) {
    group_->before_forward();
    // DDP's broadcast_buffers: BN statistics follow rank 0's. Once per iteration: DDP skips it in the forward
    // that follows a no_sync() one.
    group_->broadcast(loop.buffers);
  }
  // With accumulation the draw is split into passes; each pass's mean loss is weighted by its share of the
  // images, so that the summed gradient is the whole draw's mean (uneven last passes included).
  const int64_t images = batch.y.size(0);
  auto xs = batch.x.chunk(config_.accumulate);
  const auto ys = batch.y.chunk(config_.accumulate);
  std::vector<torch::Tensor> all_logits;
  torch::Tensor loss;
  loop.last_mix.clear();
  for (size_t i = 0; i < xs.size(); ++i) {
    torch::Tensor logits, pass_loss;
    if (config_.mix.enabled()) {
      // Each pass is the batch timm's Mixup sees; its draw follows from the seed, the rank, the iteration, the pass.
      auto gen = at::make_generator<at::CPUGeneratorImpl>(
          derive_seed(derive_seed(config_.seed, kRank, rank), kMix,
                      static_cast<uint64_t>(it) * static_cast<uint64_t>(config_.accumulate) + i));
      loop.last_mix.push_back(draw_mix(config_.mix, xs[i].size(2), xs[i].size(3), gen));
      xs[i] = apply_mix(xs[i], loop.last_mix.back());
    }
    {
      AutocastScope autocast(config_.precision, batch.x.device().type());
      std::optional<SyncBatchNormScope> sync_bn;
      if (group_ && config_.sync_batch_norm) sync_bn.emplace([this](torch::Tensor& t) { group_->all_reduce_sum(t); });
      logits = forward(xs[i], diagnose);
      // In float32 at least (autocast's half logits), in float64 for a float64 net.
      pass_loss = training_loss(logits.to(torch::promote_types(logits.scalar_type(), torch::kFloat32)), ys[i],
                                config_.mix.enabled() ? &loop.last_mix[i] : nullptr);
    }
    if (xs.size() > 1) pass_loss = pass_loss * (static_cast<double>(ys[i].size(0)) / static_cast<double>(images));
    add_lap(loop.phases.forward);
    // The reducer's hooks all-reduce gradient buckets as the last pass's backward fills them; earlier passes only
    // accumulate (DDP's no_sync), so that an iteration all-reduces once whatever `accumulate` is.
    if (group_) group_->before_backward(/*sync=*/i + 1 == xs.size());
    loop.scaler.scale(pass_loss).backward();
    all_logits.push_back(logits.detach());
    loss = loss.defined() ? loss + pass_loss.detach() : pass_loss.detach();
    add_lap(loop.phases.backward);
  }
  // fp16's loss scaler skips a step with inf/NaN gradients, as GradScaler does. Otherwise such a step would
  // write NaN into every weight and momentum buffer: the run stops before it, with the weights intact.
  if (!loop.scaler.enabled() && !all_finite(group_ ? torch::Tensor() : loss, loop.params)) throw diverged(it, loss);
  if (loop.scaler.unscale_and_check(loop.params)) {
    if (config_.clip_grad_norm > 0) torch::nn::utils::clip_grad_norm_(loop.params, config_.clip_grad_norm);
    loop.optimizer.step(loop.lr);
    update_ema(loop);
  }
  add_lap(loop.phases.optimizer);
  return {all_logits.size() == 1 ? all_logits[0] : torch::cat(all_logits), loss};
}

void Trainer::record(Loop& loop, const torch::Tensor& logits, const torch::Tensor& labels, const torch::Tensor& loss) {
  const int64_t b = labels.size(0);
  loop.window.add(logits.detach(), labels, loss);
  loop.epoch_meter.add(logits.detach(), labels, loss);
  loop.images_done += b;
  loop.window_images += b;
  if (!loop.schedule.state().warmed_up) {
    // Checked on every batch while warming up (a few hundred iterations): a resumed run decides alike.
    loop.warmup_meter.add(logits.detach(), labels, loss);
    loop.schedule.observe_train_error(loop.warmup_meter.take().error);
  }
}

TrainEvent Trainer::event(const Loop& loop, TrainEvent::Kind kind, int64_t done) const {
  TrainEvent e;
  e.kind = kind;
  e.iteration = done;
  e.epoch = (done - 1) / loop.per_epoch;
  e.lr = loop.lr;
  e.elapsed_seconds = seconds_since(loop.started);
  const double rate = static_cast<double>(done - loop.first) / std::max(1e-9, e.elapsed_seconds);
  e.eta_seconds = rate > 0 ? static_cast<double>(loop.end - done) / rate : 0;
  e.loss_scale = loop.scaler.value();
  return e;
}

void Trainer::report_iteration(Loop& loop, int64_t done, bool diagnosed) {
  TrainEvent e = event(loop, TrainEvent::Kind::Iteration, done);
  auto w = loop.window.take();
  e.loss = w.loss;
  e.train_error = w.error;
  // The ranks step together (the gradient all-reduce waits for all): the world's rate is one rank's times the world.
  e.images_per_second = static_cast<double>(loop.window_images * config_.dist.world_size) /
                        std::max(1e-9, seconds_since(loop.window_started));
  if (diagnosed) {
    e.grad_norms = model_->net()->input_grad_norms();
    e.response_stds = model_->net()->response_stds();
  }
  e.mix = loop.last_mix;
  e.data_wait_seconds = loop.window_wait;
  loop.window_started = Clock::now();
  loop.window_images = 0;
  loop.window_wait = 0;
  emit_(std::move(e));
}

void Trainer::evaluate_into(Loop& loop, TrainEvent& event) {
  try {
    event.evaluations = evaluate_all(loop);
  } catch (const Error& e) {
    if (e.code() != "ERR_ABORTED") throw;
    return;  // cancelled during evaluation: the event goes without them
  }
  if (auto v = plateau_value(config_.plateau_metric, event.evaluations)) loop.schedule.observe_metric(*v);
  loop.last_evals = event.evaluations;
  observe_early_stop(loop, event.iteration);
  if (config_.state_on_evaluation) event.state = snapshot(loop, event.iteration);
}

void Trainer::end_epoch(Loop& loop, int64_t done) {
  TrainEvent e = event(loop, TrainEvent::Kind::Epoch, done);
  auto w = loop.epoch_meter.take();
  e.loss = w.loss;
  e.train_error = w.error;
  e.images_per_second =
      static_cast<double>(loop.images_done * config_.dist.world_size) / std::max(1e-9, e.elapsed_seconds);
  e.data_wait_seconds = loop.epoch_wait;
  loop.epoch_wait = 0;
  const int64_t epochs_done = done / loop.per_epoch;
  if (config_.plateau_metric == "train_loss") loop.schedule.observe_metric(w.loss);
  if (config_.eval_every_iterations == 0 && config_.eval_every_epochs > 0 &&
      epochs_done % config_.eval_every_epochs == 0 && done != loop.end)
    evaluate_into(loop, e);
  emit_(std::move(e));
}

void Trainer::after_step(Loop& loop, int64_t done, bool report, bool diagnosed) {
  if (report) report_iteration(loop, done, diagnosed);
  if (done % loop.per_epoch == 0) end_epoch(loop, done);
  if (config_.eval_every_iterations > 0 && done % config_.eval_every_iterations == 0 && done != loop.end) {
    TrainEvent e = event(loop, TrainEvent::Kind::Evaluation, done);
    evaluate_into(loop, e);
    emit_(std::move(e));
  }
  if (config_.checkpoint_every_iterations > 0 && done % config_.checkpoint_every_iterations == 0 && done != loop.end) {
    TrainEvent e = event(loop, TrainEvent::Kind::Checkpoint, done);
    e.state = snapshot(loop, done);
    emit_(std::move(e));
  }
}

void Trainer::train_mode() {
  auto& net = model_->net();
  net->train();
  if (!config_.freeze_batch_norm) return;
  // As torchvision's FrozenBatchNorm2d: normalise by the running statistics and leave them as they are.
  for (const auto& m : net->modules(/*include_self=*/false))
    if (dynamic_cast<torch::nn::BatchNorm2dImpl*>(m.get())) m->eval();
}

void Trainer::update_ema(Loop& loop) {
  if (loop.ema.empty()) return;
  torch::NoGradGuard no_grad;
  const double d = config_.ema_decay;
  const auto live = model_->state();
  for (size_t i = 0; i < live.size(); ++i) {
    if (loop.ema[i].is_floating_point())
      loop.ema[i].mul_(d).add_(live[i].tensor.detach(), 1.0 - d);
    else
      loop.ema[i].copy_(live[i].tensor);  // num_batches_tracked: a count, not averaged
  }
}

std::vector<NamedTensor> Trainer::ema_on_cpu(const Loop& loop) const {
  std::vector<NamedTensor> out;
  if (loop.ema.empty()) return out;
  const auto live = model_->state();
  for (size_t i = 0; i < live.size(); ++i)
    out.push_back({live[i].name, loop.ema[i].to(torch::kCPU).contiguous().clone(), live[i].parameter});
  return out;
}

void Trainer::observe_early_stop(Loop& loop, int64_t iteration) {
  const EarlyStopConfig& es = config_.early_stop;
  const auto value = es.metric.empty() ? std::nullopt : plateau_value(es.metric, loop.last_evals);
  if (!value || loop.stopped_early) return;
  if (*value < loop.early.best - es.min_delta) {
    loop.early = {*value, iteration, 0};
    if (es.restore_best) {
      torch::NoGradGuard no_grad;
      loop.best_state.clear();
      for (const auto& t : model_->state()) loop.best_state.push_back(t.tensor.detach().clone());
    }
  } else if (++loop.early.bad >= es.patience) {
    // Stops before the next iteration, as a cancel does (every rank at once: stop_requested() is all-reduced).
    loop.stopped_early = stop_early_ = true;
  }
}

bool Trainer::stop_requested() {
  if (!group_) return cancel_ || stop_early_;
  // Every rank must stop at the same iteration, or the others would wait in the next all-reduce: the flags are
  // summed over the world before each iteration (one small all-reduce; a step takes far longer).
  auto flag = torch::full({1}, cancel_ || stop_early_ ? 1.0f : 0.0f);
  group_->all_reduce_sum(flag);
  return flag.item<float>() > 0;
}

TrainResult Trainer::finish(Loop& loop, int64_t it) {
  TrainResult result;
  result.stopped_early = loop.stopped_early;
  result.aborted = it < loop.end && !loop.stopped_early;
  result.iteration = it;
  result.epoch = it / loop.per_epoch;
  result.final_lr = loop.lr;
  result.elapsed_seconds = seconds_since(loop.started);
  result.images_per_second =
      static_cast<double>(loop.images_done * config_.dist.world_size) / std::max(1e-9, result.elapsed_seconds);
  if (!result.aborted && !loop.stopped_early && (validation_ || test_)) {
    try {
      result.evaluations = evaluate_all(loop);
    } catch (const Error& e) {
      if (e.code() != "ERR_ABORTED") throw;
      result.aborted = true;
    }
  } else {
    result.evaluations = loop.last_evals;
  }
  if (config_.state_at_end) result.state = snapshot(loop, it);  // the last weights, as the iteration says
  if (loop.stopped_early && !loop.best_state.empty()) {
    torch::NoGradGuard no_grad;
    const auto live = model_->state();
    for (size_t i = 0; i < live.size(); ++i) live[i].tensor.copy_(loop.best_state[i]);
    result.restored_best = true;
  }
  result.early_stop = loop.early;
  result.ema = ema_on_cpu(loop);
  result.engine = engine_;
  result.phases = loop.phases;
  return result;
}

TrainResult Trainer::run_loop() {
  auto lock = model_->acquire_for_training();
  struct Release {
    Model& m;
    ~Release() { m.release_training(); }
  } release{*model_};

  const torch::Device device = model_->device();
  configure(device);
  auto loop = start_loop(device);
  // Each rank draws its own augmentations (its shard is its own); one process keeps the run's seed.
  const uint64_t augment_seed =
      group_ ? derive_seed(config_.seed, kRank, static_cast<uint64_t>(group_->rank())) : config_.seed;
  ResNet& net = model_->net();
  // While it runs, other threads' idle OpenMP teams end (device/runtime.h).
  std::optional<CpuTrainingScope> cpu_training;
  if (device.is_cpu()) cpu_training.emplace();
  Prefetcher prefetch(train_, on_device(config_.augment, device, net->dtype()), device, augment_seed, loop->first,
                      loop->end, prefetch_depth(device));
  train_mode();

  int64_t it = loop->first;
  for (; it < loop->end; ++it) {
    if (group_) group_->progress(it);
    if (stop_requested()) break;
    PreparedBatch batch;
    const auto wait_started = Clock::now();
    try {
      batch = prefetch.next();
    } catch (const Error& e) {
      if (cancel_ && e.code() == "ERR_ABORTED") break;
      throw;
    }
    const double waited = seconds_since(wait_started);
    loop->window_wait += waited;
    loop->epoch_wait += waited;
    loop->phases.data_wait += waited;
    loop->lr = loop->schedule.lr(it);
    const bool report = config_.log_every > 0 && ((it + 1) % config_.log_every == 0 || it + 1 == loop->end);
    const bool diagnose = config_.diagnostics && report;
    if (diagnose) net->set_diagnostics(true);
    auto [logits, loss] = step(*loop, batch, it, diagnose);
    if (diagnose) net->set_diagnostics(false);
    const auto stepped = Clock::now();
    record(*loop, logits, batch.y, loss);
    after_step(*loop, it + 1, report, diagnose);
    loop->phases.other += seconds_since(stepped);
  }
  prefetch.stop();
  loop->phases.gather = prefetch.gather_seconds();
  loop->phases.augment = prefetch.augment_seconds();
  return finish(*loop, it);
}

}  // namespace rt
