#pragma once
// Mixup and CutMix as timm's Mixup (mode "batch"): one draw per batch, each image mixed with the batch reversed
// (x.flip(0)), the targets mixed alike from smoothed one-hot labels. The draws come from a CPU generator the caller
// seeds per iteration and pass, so a resumed run mixes identically.
#include <ATen/core/Generator.h>
#include <torch/types.h>

#include <cstdint>

namespace rt {

// Every value comes from the facade; none is chosen here. Off when both alphas are 0.
struct MixConfig {
  double mixup_alpha = 0;   // Beta(α, α) of mixup's λ (0: no mixup)
  double cutmix_alpha = 0;  // Beta(α, α) of cutmix's λ before the box (0: no cutmix)
  double prob = 0;          // probability that a batch is mixed at all
  double switch_prob = 0;   // with both on: probability of cutmix rather than mixup
  bool correct_lam = true;  // cutmix's λ from the box's clipped area (timm's correct_lam)
  bool enabled() const { return mixup_alpha > 0 || cutmix_alpha > 0; }
};

// One batch's draw: λ (1: not mixed), and cutmix's box rows [yl, yh) and columns [xl, xh).
struct MixParams {
  double lam = 1.0;
  bool cutmix = false;
  int64_t yl = 0, yh = 0, xl = 0, xh = 0;
};

// timm's _params_per_batch and cutmix_bbox_and_lam for images of height × width.
MixParams draw_mix(const MixConfig& config, int64_t height, int64_t width, at::Generator& gen);
// The mixed batch (a new tensor; x is left as it is).
torch::Tensor apply_mix(const torch::Tensor& x, const MixParams& p);
// timm's mixup_target: one-hot labels (on 1 − s + s/C, off s/C) mixed with the reversed batch's by λ.
torch::Tensor mix_targets(const torch::Tensor& labels, int64_t classes, const MixParams& p, double smoothing,
                          torch::ScalarType dtype);

}  // namespace rt
