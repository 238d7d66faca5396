#pragma once
// Mixed precision: autocast for the forward pass (bf16 or fp16 on CUDA, bf16 on the CPU, as torch.autocast) and, for
// fp16, a dynamic loss scale like torch.cuda.amp.GradScaler. Hides the autocast API, which changed between libtorch
// versions.
#include <torch/types.h>

#include <vector>

#include "train/config.h"

namespace rt {

// Turns autocast on for this thread and device type while alive (and off again after).
class AutocastScope {
 public:
  AutocastScope(Precision precision, c10::DeviceType device);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  c10::DeviceType device_;
  bool active_ = false;
};

class LossScaler {
 public:
  LossScaler(bool enabled, double initial_scale) : enabled_(enabled), scale_(initial_scale) {}
  torch::Tensor scale(const torch::Tensor& loss) const { return enabled_ ? loss * scale_ : loss; }
  // Unscales the gradients in place; false when one is inf/NaN (the step must be skipped; the scale halves).
  bool unscale_and_check(const std::vector<torch::Tensor>& params);
  double value() const { return enabled_ ? scale_ : 0.0; }
  bool enabled() const { return enabled_; }

 private:
  bool enabled_;
  double scale_;
  int64_t good_steps_ = 0;
};

// True when the loss and every gradient are finite (one device-side pass, one read back). Without a loss
// (distributed runs, whose gradients are all-reduced and so agree), the gradients alone decide.
bool all_finite(const torch::Tensor& loss, const std::vector<torch::Tensor>& params);

}  // namespace rt
