#pragma once
// A training run's settings as plain C++: the facade validated and resolved every one (lib/native.ts,
// NativeTrainConfig, is the contract; lib/train/options/ holds the defaults; none is chosen here).
#include <torch/types.h>

#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "data/augment.h"
#include "data/mix.h"
#include "distributed/group.h"
#include "train/metrics.h"
#include "train/optimizer.h"
#include "train/schedule.h"

namespace rt {

enum class Precision { Float32, BFloat16, Float16 };

// Early stopping (Keras' and Lightning's rule): stop once `metric` has not improved by more than min_delta for
// `patience` evaluations in a row. Its state travels in checkpoints, so a resumed run counts on.
struct EarlyStopState {
  double best = std::numeric_limits<double>::infinity();
  int64_t best_iteration = 0;
  int64_t bad = 0;  // evaluations in a row without an improvement
};

struct EarlyStopConfig {
  std::string metric;  // {val,test}_{loss,error}; empty: off
  int64_t patience = 0;
  double min_delta = 0;
  bool restore_best = false;  // put the best evaluation's weights back when it stops
  EarlyStopState state;       // where a resumed run's rule stood
};

struct TrainConfig {
  int64_t batch_size = 0;
  int64_t total_iterations = 0;
  int64_t start_iteration = 0;  // > 0 when resuming
  uint64_t seed = 0;
  bool shuffle = false, drop_last = false;
  int64_t repeats = 1;        // repeated augmentation (data/batch_source.h)
  int64_t repeats_round = 0;  // its epoch rounding (timm's selected_round; rank_share)
  bool deterministic = false;
  bool cudnn_benchmark = false;  // forced off when deterministic
  OptimizerConfig optimizer;
  ScheduleConfig schedule;
  ScheduleState schedule_state;
  AugmentConfig augment;
  double label_smoothing = 0.0;
  // The training loss: cross-entropy, or binary cross-entropy on (smoothed) one-hot targets as timm's
  // BinaryCrossEntropy, the targets optionally binarised above bce_target_threshold (< 0: not).
  enum class Loss { CrossEntropy, BinaryCrossEntropy };
  Loss loss = Loss::CrossEntropy;
  double bce_target_threshold = -1.0;
  // Mixup / CutMix on each pass's batch (timm's Mixup, mode "batch"); label smoothing then goes into its targets.
  MixConfig mix;
  bool freeze_batch_norm = false;  // BN layers in eval mode while training: running statistics, fixed
  double clip_grad_norm = 0.0;     // 0: off
  int64_t accumulate = 1;          // forward/backward passes per step; batch_size is what they draw together
  EarlyStopConfig early_stop;
  // An exponential moving average of the weights (timm's ModelEmaV2): after each step, ema = d·ema + (1-d)·w for
  // every floating-point tensor (BN statistics too), other buffers copied. Evaluations use it. 0: off.
  double ema_decay = 0.0;
  std::vector<std::pair<std::string, torch::Tensor>> ema_state;  // resume: the average so far
  int64_t log_every = 0;
  int64_t eval_every_iterations = 0;
  int64_t eval_every_epochs = 0;
  int64_t eval_batch_size = 0;
  std::string plateau_metric;  // {val,test}_{loss,error} or train_loss
  bool diagnostics = false;
  int threads = 0;  // 0: keep the process setting
  int64_t checkpoint_every_iterations = 0;
  bool state_at_end = false;         // hand the full state over when the run stops (final / on-cancel checkpoint)
  bool state_on_evaluation = false;  // and with every evaluation (to keep the best checkpoint)
  bool channels_last = false;
  bool cuda_graph = false;  // capture the step in a CUDA graph after `kCudaGraphWarmup` eager iterations
  Precision precision = Precision::Float32;
  // Resume: the optimizer's buffers and step count (model weights are loaded into the model itself).
  std::vector<std::pair<std::string, torch::Tensor>> optimizer_state;
  int64_t optimizer_steps = 0;
  double loss_scale = 0;         // fp16 dynamic loss scale (its start, or where the checkpoint left it)
  MeterSums epoch_meter;         // resumed mid-epoch: the sums so far
  DistConfig dist;               // world_size 1: one process
  bool sync_batch_norm = false;  // BN statistics over every rank's batch (torch.nn.SyncBatchNorm)
};

}  // namespace rt
