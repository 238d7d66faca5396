#pragma once
// torchvision's TrivialAugmentWide and RandAugment, and its RandomErasing, for a whole batch on the training
// device: each image draws its own operations, images that drew the same operation go through it together.
// The operations follow torchvision's tensor implementations (transforms/_functional_tensor.py) step by step on
// uint8-valued float32 pixels, so one image gives torchvision's pixels for the same operation and magnitude.
#include <ATen/core/Generator.h>
#include <torch/types.h>

#include <cstdint>

namespace rt {

enum class AutoAugmentKind { None, TrivialAugmentWide, RandAugment };

// Every value comes from the facade.
struct AutoAugmentConfig {
  AutoAugmentKind kind = AutoAugmentKind::None;
  int64_t num_ops = 0;    // RandAugment: operations applied in turn
  int64_t magnitude = 0;  // RandAugment: the magnitude bin of every operation
  int64_t num_bins = 0;   // magnitude bins (torchvision: 31)
};

// The operations in torchvision's order (its _augmentation_space): a draw's index names one.
inline constexpr int64_t kAutoAugmentOps = 14;
const char* auto_augment_op_name(int64_t op);

// What each image drew: B×num_ops operation indices, and the signed magnitude torchvision's _apply_op receives.
struct AutoAugmentDraws {
  torch::Tensor ops;         // int64
  torch::Tensor magnitudes;  // float64
};

// x: B×C×H×W float32 holding integer pixel values in [0, 255] (C is 1 or 3). Returns the same kind of tensor.
torch::Tensor auto_augment(const torch::Tensor& x, const AutoAugmentConfig& c, at::Generator& gen,
                           AutoAugmentDraws* draws = nullptr);

struct EraseConfig {
  double prob = 0;  // 0: off
  double scale_min = 0, scale_max = 0;
  double ratio_min = 0, ratio_max = 0;
  bool random_value = false;  // per-pixel standard normal values (torchvision's value='random'), else `value`
  double value = 0;
};

// torchvision's RandomErasing on a normalised batch: each image, with probability `prob`, gets one rectangle
// (10 tries for a box that fits, else none) set to the value. `boxes` (optional): B×4 int64 top, left, height,
// width, height 0 where nothing was erased.
torch::Tensor random_erase(const torch::Tensor& x, const EraseConfig& c, at::Generator& gen,
                           torch::Tensor* boxes = nullptr);

}  // namespace rt
