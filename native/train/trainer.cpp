#include "train/trainer.h"

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <torch/nn/functional/loss.h>

#include <chrono>
#include <tuple>
#include <cmath>

#include "common/error.h"
#include "data/prefetcher.h"
#include "train/optimizer.h"
#include "train/precision.h"
#include "train/graphed_step.h"
#include "device/cuda.h"

namespace rt {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

void set_params_channels_last(ResNet& net) {
  torch::NoGradGuard no_grad;
  for (auto& p : net->parameters())
    if (p.dim() == 4) p.set_data(p.contiguous(torch::MemoryFormat::ChannelsLast));
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

Trainer::Trainer(std::shared_ptr<Model> model, std::shared_ptr<BatchSource> train, std::optional<TensorDataset> validation,
                 std::optional<TensorDataset> test, TrainConfig config, std::function<void(TrainEvent)> emit)
    : model_(std::move(model)), train_(std::move(train)), validation_(std::move(validation)), test_(std::move(test)),
      config_(std::move(config)), emit_(std::move(emit)) {}

std::vector<EvalMetrics> Trainer::evaluate_all(const torch::Device& device) {
  std::vector<EvalMetrics> out;
  if (validation_) out.push_back(evaluate(model_->net(), *validation_, config_.augment, config_.eval_batch_size, device, "val", &cancel_));
  if (test_) out.push_back(evaluate(model_->net(), *test_, config_.augment, config_.eval_batch_size, device, "test", &cancel_));
  return out;
}

std::shared_ptr<TrainState> Trainer::capture(int64_t iteration, const Optimizer& optimizer, const LrSchedule& schedule,
                                             double loss_scale) {
  auto s = std::make_shared<TrainState>();
  s->iteration = iteration;
  s->epoch = iteration / train_->batches_per_epoch();
  s->schedule = schedule.state();
  s->optimizer_steps = optimizer.steps();
  s->loss_scale = loss_scale;
  s->model = model_->state_on_cpu();
  for (auto& t : optimizer.state()) s->optimizer.push_back({t.name, t.tensor.detach().to(torch::kCPU).contiguous().clone(), false});
  s->cpu_rng = at::detail::getDefaultCPUGenerator().get_state();
  if (at::globalContext().hasCUDA())
    for (int i = 0; i < at::detail::getCUDAHooks().getNumGPUs(); ++i)
      s->cuda_rng.push_back(at::globalContext().defaultGenerator(c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(i))).get_state());
  return s;
}

TrainResult Trainer::run() {
  try {
    return run_loop();
  } catch (const c10::Error& e) {
    const std::string message = e.what_without_backtrace();
    if (message.find("out of memory") == std::string::npos) throw;
    // The process survives: cached blocks go back to the device, the model keeps its last complete step.
    release_cuda_cache_after_oom();
    throw Error("ERR_OUT_OF_MEMORY", "out of memory on " + model_->device().str() + " training with batch size " +
                                         std::to_string(config_.batch_size) + ": use a smaller batchSize" +
                                         (model_->device().is_cuda() ? ", precision bfloat16/float16" : "") + " (" +
                                         message.substr(0, message.find('\n')) + ")");
  }
}

TrainResult Trainer::run_loop() {
  namespace F = torch::nn::functional;
  at::init_num_threads();
  if (config_.threads > 0) at::set_num_threads(config_.threads);
  auto lock = model_->acquire_for_training();
  struct Release {
    Model& m;
    ~Release() { m.release_training(); }
  } release{*model_};

  const torch::Device device = model_->device();
  ResNet& net = model_->net();
  const bool cuda = device.is_cuda();
  if (config_.deterministic) {
    at::globalContext().setDeterministicAlgorithms(true, /*warn_only=*/false);
    at::globalContext().setBenchmarkCuDNN(false);
  } else if (cuda) {
    at::globalContext().setBenchmarkCuDNN(config_.cudnn_benchmark);
  }
  if (config_.precision != Precision::Float32 && !cuda) throw invalid("mixed precision needs a CUDA device");
  if (config_.channels_last) set_params_channels_last(net);
  if (validation_) validation_ = validation_->to(device);
  if (test_) test_ = test_->to(device);

  Optimizer optimizer(model_->state(), config_.optimizer);
  if (!config_.optimizer_state.empty()) optimizer.load_state(config_.optimizer_state);
  optimizer.set_steps(config_.optimizer_steps);
  config_.optimizer_state.clear();
  LrSchedule schedule(config_.schedule, config_.schedule_state);
  LossScaler scaler(config_.precision == Precision::Float16, config_.loss_scale);
  std::vector<torch::Tensor> params;
  for (auto& p : net->parameters())
    if (p.requires_grad()) params.push_back(p);

  const int64_t per_epoch = train_->batches_per_epoch();
  const int64_t first = config_.start_iteration, end = config_.total_iterations;
  // Eager steps before capture: they create the momentum buffers and settle cuDNN's choices.
  constexpr int64_t kCudaGraphWarmup = 3;
  std::unique_ptr<GraphedStep> graphed;
  if (config_.cuda_graph) {
    if (!cuda) throw invalid("cudaGraph needs the model on a CUDA device");
    if (config_.diagnostics) throw invalid("cudaGraph cannot record diagnostics (they read values inside the step)");
    if (config_.precision != Precision::Float32) throw invalid("cudaGraph runs in float32");
    if (!config_.drop_last) throw invalid("cudaGraph needs dropLast: every batch the same shape");
  }
  Prefetcher prefetch(train_, config_.augment, device, config_.seed, first, end, config_.prefetch_depth);
  net->train();

  TrainMeter window, epoch_meter, warmup_meter;
  epoch_meter.restore(config_.epoch_meter);
  TrainResult result;
  const auto started = Clock::now();
  auto window_started = started;
  int64_t window_images = 0, images_done = 0;
  double window_wait = 0, epoch_wait = 0;
  double lr = schedule.lr(first);
  int64_t it = first;
  std::vector<EvalMetrics> last_evals;

  auto make_event = [&](TrainEvent::Kind kind, int64_t done) {
    TrainEvent e;
    e.kind = kind;
    e.iteration = done;
    e.epoch = (done - 1) / per_epoch;
    e.lr = lr;
    e.elapsed_seconds = seconds_since(started);
    const double rate = static_cast<double>(done - first) / std::max(1e-9, e.elapsed_seconds);
    e.eta_seconds = rate > 0 ? static_cast<double>(end - done) / rate : 0;
    e.loss_scale = scaler.value();
    return e;
  };
  // Evaluates val/test into `event`; a cancel during evaluation leaves the event without them.
  auto run_evaluation = [&](TrainEvent& event) {
    try {
      event.evaluations = evaluate_all(device);
    } catch (const Error& e) {
      if (e.code() != "ERR_ABORTED") throw;
      return;
    }
    if (auto v = plateau_value(config_.plateau_metric, event.evaluations)) schedule.observe_metric(*v);
    last_evals = event.evaluations;
    if (config_.state_on_evaluation) {
      event.state = capture(event.iteration, optimizer, schedule, scaler.value());
      event.state->epoch_meter = epoch_meter.peek();
    }
  };

  for (; it < end; ++it) {
    if (cancel_) break;
    PreparedBatch batch;
    const auto wait_started = Clock::now();
    try {
      batch = prefetch.next();
      window_wait += seconds_since(wait_started);
      epoch_wait += seconds_since(wait_started);
    } catch (const Error& e) {
      if (cancel_ && e.code() == "ERR_ABORTED") break;
      throw;
    }
    lr = schedule.lr(it);
    const bool report = config_.log_every > 0 && ((it + 1) % config_.log_every == 0 || it + 1 == end);
    const bool diagnose = config_.diagnostics && report;
    if (diagnose) net->set_diagnostics(true);

    torch::Tensor logits, loss;
    if (graphed) {
      std::tie(logits, loss) = graphed->step(batch.x, batch.y, lr);
    } else if (config_.cuda_graph && it - first >= kCudaGraphWarmup) {
      graphed = std::make_unique<GraphedStep>(net, optimizer, config_.label_smoothing, batch.x, batch.y, lr);
      std::tie(logits, loss) = graphed->outputs();  // capturing ran this iteration's step
    } else {
      optimizer.zero_grad();
      {
        AutocastScope autocast(config_.precision);
        logits = net->forward(batch.x);
        loss = F::cross_entropy(logits.to(torch::kFloat32), batch.y,
                                F::CrossEntropyFuncOptions().label_smoothing(config_.label_smoothing));
      }
      scaler.scale(loss).backward();
      if (scaler.unscale_and_check(params)) optimizer.step(lr);
    }
    if (diagnose) net->set_diagnostics(false);

    const int64_t b = batch.y.size(0);
    window.add(logits.detach(), batch.y, loss);
    epoch_meter.add(logits.detach(), batch.y, loss);
    images_done += b;
    window_images += b;
    if (!schedule.state().warmed_up) {
      // Checked on every batch while warming up (a few hundred iterations): a resumed run decides alike.
      warmup_meter.add(logits.detach(), batch.y, loss);
      schedule.observe_train_error(warmup_meter.take().error);
    }
    const int64_t done = it + 1;

    if (report) {
      TrainEvent e = make_event(TrainEvent::Kind::Iteration, done);
      auto w = window.take();
      e.loss = w.loss;
      e.train_error = w.error;
      e.images_per_second = static_cast<double>(window_images) / std::max(1e-9, seconds_since(window_started));
      if (diagnose) {
        e.grad_norms = net->input_grad_norms();
        e.response_stds = net->response_stds();
      }
      e.data_wait_seconds = window_wait;
      window_started = Clock::now();
      window_images = 0;
      window_wait = 0;
      emit_(std::move(e));
    }
    const bool epoch_end = done % per_epoch == 0;
    const bool eval_now = config_.eval_every_iterations > 0 && done % config_.eval_every_iterations == 0 && done != end;
    if (epoch_end) {
      TrainEvent e = make_event(TrainEvent::Kind::Epoch, done);
      auto w = epoch_meter.take();
      e.loss = w.loss;
      e.train_error = w.error;
      e.images_per_second = static_cast<double>(images_done) / std::max(1e-9, e.elapsed_seconds);
      e.data_wait_seconds = epoch_wait;
      epoch_wait = 0;
      const int64_t epochs_done = done / per_epoch;
      if (config_.plateau_metric == "train_loss") schedule.observe_metric(w.loss);
      if (config_.eval_every_iterations == 0 && config_.eval_every_epochs > 0 && epochs_done % config_.eval_every_epochs == 0 &&
          done != end)
        run_evaluation(e);
      emit_(std::move(e));
    }
    if (eval_now) {
      TrainEvent e = make_event(TrainEvent::Kind::Evaluation, done);
      run_evaluation(e);
      emit_(std::move(e));
    }
    if (config_.checkpoint_every_iterations > 0 && done % config_.checkpoint_every_iterations == 0 && done != end) {
      TrainEvent e = make_event(TrainEvent::Kind::Checkpoint, done);
      e.state = capture(done, optimizer, schedule, scaler.value());
      e.state->epoch_meter = epoch_meter.peek();
      emit_(std::move(e));
    }
  }
  prefetch.stop();

  result.aborted = it < end;
  result.iteration = it;
  result.epoch = it / per_epoch;
  result.final_lr = lr;
  result.elapsed_seconds = seconds_since(started);
  result.images_per_second = static_cast<double>(images_done) / std::max(1e-9, result.elapsed_seconds);
  if (!result.aborted && (validation_ || test_)) {
    try {
      result.evaluations = evaluate_all(device);
    } catch (const Error& e) {
      if (e.code() != "ERR_ABORTED") throw;
      result.aborted = true;
    }
  } else {
    result.evaluations = last_evals;
  }
  if (config_.state_at_end) {
    result.state = capture(it, optimizer, schedule, scaler.value());
    result.state->epoch_meter = epoch_meter.peek();
  }
  return result;
}

}  // namespace rt
