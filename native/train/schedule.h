#pragma once
// Learning-rate schedules, as a function of the iteration plus the little state some of them keep
// (reduce-on-plateau's best value, the ResNet-110 warm-up's switch). The state is saved in checkpoints.
#include <cstdint>
#include <limits>
#include <vector>

namespace rt {

// Every value comes from the facade (lib/train/options/ holds the defaults); none is chosen here.
struct ScheduleConfig {
  enum class Kind { Constant, MultiStep, Cosine, OneCycle, Plateau };
  Kind kind = Kind::Constant;
  double base_lr = 0;
  int64_t total_iterations = 1;
  int64_t iterations_per_epoch = 1;
  // multistep: lr = base · gamma^(milestones passed); milestones in iterations or epochs
  std::vector<int64_t> milestones;
  bool milestones_in_epochs = false;
  double gamma = 0;
  // cosine: from base down to min_lr over the run (after any warm-up); plateau: the floor
  double min_lr = 0.0;
  // one-cycle (PyTorch's OneCycleLR, cosine annealing): from max_lr/div_factor up to max_lr, then down
  // to max_lr/(div_factor·final_div_factor)
  double max_lr = 0, pct_start = 0, div_factor = 1, final_div_factor = 1;
  // reduce-on-plateau (mode min, relative threshold), stepped at each evaluation
  double plateau_factor = 0, plateau_threshold = 0;
  int64_t plateau_patience = 0, plateau_cooldown = 0;
  // linear warm-up: factor from warmup_start_factor to 1 over warmup_iterations
  int64_t warmup_iterations = 0;
  double warmup_start_factor = 0;
  // the paper's ResNet-110 warm-up: error_warmup_lr until the training error falls below the threshold
  bool error_warmup = false;
  double error_warmup_lr = 0, error_warmup_threshold = 0;
};

struct ScheduleState {
  bool warmed_up = false;  // the ResNet-110 warm-up has ended
  double plateau_scale = 1.0;
  double plateau_best = std::numeric_limits<double>::infinity();
  int64_t plateau_bad = 0, plateau_cooldown_left = 0;
};

class LrSchedule {
 public:
  explicit LrSchedule(ScheduleConfig config, ScheduleState state = {});
  // The rate for the update made at `iteration` (0-based).
  double lr(int64_t iteration) const;
  // ResNet-110 warm-up: called with the recent training error.
  void observe_train_error(double error);
  // Reduce-on-plateau: called with the monitored metric (lower is better) at each evaluation.
  void observe_metric(double value);
  const ScheduleState& state() const { return state_; }
  const ScheduleConfig& config() const { return config_; }

 private:
  double base(int64_t iteration) const;
  ScheduleConfig config_;
  ScheduleState state_;
};

}  // namespace rt
