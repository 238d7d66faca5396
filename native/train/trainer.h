#pragma once
// The whole training loop in C++: draw, augment, forward, loss, backward, step, schedule, metrics,
// evaluation. It runs on the calling thread (the binding gives it its own) and reports through `emit`.
#include <torch/types.h>

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "data/batch_source.h"
#include "data/prefetcher.h"
#include "data/tensor_dataset.h"
#include "distributed/group.h"
#include "models/model.h"
#include "models/onednn_training.h"
#include "train/config.h"
#include "train/metrics.h"

namespace rt {

// Everything a checkpoint needs besides the config: CPU copies, safe to hand to another thread.
struct TrainState {
  int64_t iteration = 0;  // iterations done
  int64_t epoch = 0;      // epochs done (complete)
  ScheduleState schedule;
  int64_t optimizer_steps = 0;
  double loss_scale = 0;
  std::vector<NamedTensor> model;
  std::vector<NamedTensor> optimizer;
  MeterSums epoch_meter;  // the current epoch's running sums, so a resumed epoch reports the same loss
  EarlyStopState early_stop;
  std::vector<NamedTensor> ema;  // the weights' moving average, when the run keeps one
  torch::Tensor cpu_rng;         // libtorch's default CPU generator
  std::vector<torch::Tensor> cuda_rng;
};

struct TrainEvent {
  enum class Kind { Iteration, Epoch, Evaluation, Checkpoint };
  Kind kind = Kind::Iteration;
  int64_t iteration = 0;  // iterations done
  int64_t epoch = 0;      // current epoch (0-based); for Epoch events, the one that ended
  double lr = 0;
  double loss = 0, train_error = 0;  // over the window since the last event of this kind
  double images_per_second = 0, eta_seconds = 0, elapsed_seconds = 0;
  double data_wait_seconds = 0;  // time the loop waited for batches, over the same window
  double loss_scale = 0;
  std::vector<EvalMetrics> evaluations;
  std::vector<double> grad_norms, response_stds;  // diagnostics, per block
  std::vector<MixParams> mix;                     // mixup / cutmix: the last step's draw, per pass
  std::shared_ptr<TrainState> state;              // Checkpoint events
};

// Where a run's time went, in seconds on the training thread (host time: on CUDA the kernels run asynchronously,
// so these say when the host waited, not what the device did), and on the prefetching thread.
struct PhaseSeconds {
  double data_wait = 0;  // waiting for the next prepared batch (on the CPU: preparing it)
  double forward = 0;    // forward passes and the loss
  double backward = 0;   // backward passes (with DDP, the all-reduces they wait for)
  double optimizer = 0;  // zero_grad, the finite check, clipping, the step, the EMA
  double other = 0;      // meters, events, evaluations, checkpoint snapshots
  double gather = 0;     // of which (or, on a GPU, beside the step): drawing the batch, copying it to the device
  double augment = 0;    // of which (or beside): conversion, normalisation, augmentation
};

struct TrainResult {
  bool aborted = false;
  int64_t iteration = 0, epoch = 0;
  double elapsed_seconds = 0, images_per_second = 0;
  double final_lr = 0;
  std::vector<EvalMetrics> evaluations;  // the last evaluation of each split
  std::shared_ptr<TrainState> state;     // when config.state_at_end
  bool stopped_early = false;            // by the early-stopping rule (then not aborted)
  bool restored_best = false;            // the model holds the best evaluation's weights
  EarlyStopState early_stop;
  std::vector<NamedTensor> ema;  // the weights' moving average at the end (config.ema_decay > 0), on the CPU
  // Which forward and backward trained: "onednn" (OneDnnTraining), or "libtorch" and why not the other.
  std::string engine;
  PhaseSeconds phases;
};

class Trainer {
 public:
  Trainer(std::shared_ptr<Model> model, std::shared_ptr<BatchSource> train, std::optional<TensorDataset> validation,
          std::optional<TensorDataset> test, TrainConfig config, std::function<void(TrainEvent)> emit);
  TrainResult run();
  // Stops after the current iteration; the model and optimizer stay consistent.
  void cancel() {
    cancel_ = true;
    train_->cancel();  // wakes a wait on a streamed source
  }

 private:
  struct Loop;  // one run's working state (trainer.cpp)
  TrainResult run_loop();
  // The steps of a run, in order.
  void configure(const torch::Device& device);      // threads, determinism, cuDNN, memory format, evaluation sets
  void choose_engine(const torch::Device& device);  // the oneDNN training path, or libtorch's
  std::unique_ptr<Loop> start_loop(const torch::Device& device);  // optimizer, schedule, loss scaler, meters
  // The loss the step minimises (cross-entropy with label smoothing, or timm's binary cross-entropy).
  // With mixup / cutmix, `mix` is the pass's draw: the targets are its mixed soft labels.
  torch::Tensor training_loss(const torch::Tensor& logits, const torch::Tensor& labels, const MixParams* mix) const;
  std::pair<torch::Tensor, torch::Tensor> step(Loop& loop, const PreparedBatch& batch, int64_t it,
                                               bool diagnose);   // logits, loss
  torch::Tensor forward(const torch::Tensor& x, bool diagnose);  // the training forward, on the engine chosen
  void record(Loop& loop, const torch::Tensor& logits, const torch::Tensor& labels, const torch::Tensor& loss);
  void after_step(Loop& loop, int64_t done, bool report, bool diagnosed);  // events, evaluations, checkpoints
  void report_iteration(Loop& loop, int64_t done, bool diagnosed);
  void end_epoch(Loop& loop, int64_t done);
  void evaluate_into(Loop& loop, TrainEvent& event);
  void observe_early_stop(Loop& loop, int64_t iteration);
  void update_ema(Loop& loop);
  void train_mode();  // training mode, BN layers excepted when config.freeze_batch_norm
  std::vector<NamedTensor> ema_on_cpu(const Loop& loop) const;
  TrainResult finish(Loop& loop, int64_t it);
  bool stop_requested();  // cancelled here, or (distributed) on any rank
  TrainEvent event(const Loop& loop, TrainEvent::Kind kind, int64_t done) const;
  std::vector<EvalMetrics> evaluate_all(const Loop& loop);
  // Everything a checkpoint holds, at `iteration`, copied to the CPU.
  std::shared_ptr<TrainState> snapshot(const Loop& loop, int64_t iteration);

  std::shared_ptr<Model> model_;
  std::shared_ptr<BatchSource> train_;
  std::optional<TensorDataset> validation_, test_;
  TrainConfig config_;
  std::function<void(TrainEvent)> emit_;
  std::atomic<bool> cancel_{false};
  bool stop_early_ = false;                 // set on the training thread by the early-stopping rule
  std::unique_ptr<DistGroup> group_;        // distributed runs only
  std::unique_ptr<OneDnnTraining> onednn_;  // CPU float32 runs it supports (configure decides)
  std::string engine_;                      // TrainResult::engine
};

}  // namespace rt
