#include "train/schedule.h"

#include <algorithm>
#include <cmath>

namespace rt {

namespace {

constexpr double kPi = 3.14159265358979323846;

double cos_anneal(double start, double end, double pct) {
  return end + (start - end) / 2.0 * (std::cos(kPi * pct) + 1.0);
}

}  // namespace

LrSchedule::LrSchedule(ScheduleConfig config, ScheduleState state) : config_(std::move(config)), state_(state) {
  if (!config_.error_warmup) state_.warmed_up = true;
}

double LrSchedule::base(int64_t i) const {
  const auto& c = config_;
  switch (c.kind) {
    case ScheduleConfig::Kind::Constant:
      return c.base_lr;
    case ScheduleConfig::Kind::MultiStep: {
      const int64_t unit = c.milestones_in_epochs ? i / std::max<int64_t>(1, c.iterations_per_epoch) : i;
      const auto passed = std::count_if(c.milestones.begin(), c.milestones.end(), [&](int64_t m) { return unit >= m; });
      return c.base_lr * std::pow(c.gamma, static_cast<double>(passed));
    }
    case ScheduleConfig::Kind::Cosine: {
      const double t = static_cast<double>(std::max<int64_t>(0, i - c.warmup_iterations));
      const double span = static_cast<double>(std::max<int64_t>(1, c.total_iterations - c.warmup_iterations));
      return c.min_lr + (c.base_lr - c.min_lr) * (1.0 + std::cos(kPi * std::min(t, span) / span)) / 2.0;
    }
    case ScheduleConfig::Kind::OneCycle: {
      const double initial = c.max_lr / c.div_factor, floor = initial / c.final_div_factor;
      const double up_end = c.pct_start * static_cast<double>(c.total_iterations) - 1.0;
      const double down_end = static_cast<double>(c.total_iterations) - 1.0;
      const double x = static_cast<double>(std::min<int64_t>(i, c.total_iterations - 1));
      if (x <= up_end) return cos_anneal(initial, c.max_lr, up_end > 0 ? x / up_end : 1.0);
      return cos_anneal(c.max_lr, floor, (x - up_end) / std::max(1e-12, down_end - up_end));
    }
    case ScheduleConfig::Kind::Plateau:
      return std::max(c.min_lr, c.base_lr * state_.plateau_scale);
  }
  return c.base_lr;
}

double LrSchedule::lr(int64_t i) const {
  if (!state_.warmed_up) return config_.error_warmup_lr;
  double rate = base(i);
  // One-cycle has its own warm-up phase.
  if (config_.kind != ScheduleConfig::Kind::OneCycle && i < config_.warmup_iterations) {
    const double t = static_cast<double>(i) / static_cast<double>(config_.warmup_iterations);
    rate *= config_.warmup_start_factor + (1.0 - config_.warmup_start_factor) * t;
  }
  return rate;
}

void LrSchedule::observe_train_error(double error) {
  if (!state_.warmed_up && error < config_.error_warmup_threshold) state_.warmed_up = true;
}

void LrSchedule::observe_metric(double value) {
  if (config_.kind != ScheduleConfig::Kind::Plateau || !std::isfinite(value)) return;
  if (value < state_.plateau_best * (1.0 - config_.plateau_threshold)) {
    state_.plateau_best = value;
    state_.plateau_bad = 0;
  } else {
    ++state_.plateau_bad;
  }
  if (state_.plateau_cooldown_left > 0) {
    --state_.plateau_cooldown_left;
    state_.plateau_bad = 0;
  }
  if (state_.plateau_bad > config_.plateau_patience) {
    state_.plateau_scale *= config_.plateau_factor;
    state_.plateau_cooldown_left = config_.plateau_cooldown;
    state_.plateau_bad = 0;
  }
}

}  // namespace rt
