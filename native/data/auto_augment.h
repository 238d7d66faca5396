#pragma once
// torchvision's TrivialAugmentWide and RandAugment, timm's RandAugment, and torchvision's RandomErasing, for a whole
// batch on the training device: each image draws its own operations, images that drew the same operation go
// through it together. torchvision's operations follow its tensor implementations (transforms/_functional_tensor.py)
// step by step on uint8-valued float32 pixels, so one image gives torchvision's pixels for the same operation and
// magnitude; timm's follow the Pillow code timm calls (timm_augment.cpp).
#include <ATen/core/Generator.h>
#include <torch/types.h>

#include <cstdint>
#include <vector>

namespace rt {

enum class AutoAugmentKind { None, TrivialAugmentWide, RandAugment, TimmRandAugment };
// timm's resampling of its geometric operations: one filter, or either at random per operation (its 'random').
enum class TimmResample { Bilinear, Bicubic, Random };

// Every value comes from the facade.
struct AutoAugmentConfig {
  AutoAugmentKind kind = AutoAugmentKind::None;
  int64_t num_ops = 0;    // RandAugment: operations applied in turn
  int64_t magnitude = 0;  // RandAugment: the magnitude bin of every operation; timm's: its magnitude (of 10)
  int64_t num_bins = 0;   // magnitude bins (torchvision: 31)
  // timm's RandAugment only (rand-m<magnitude>-n<num_ops>-mstd<magnitude_std>-p<prob>-inc<increasing>):
  double magnitude_std = 0;  // gauss noise on the magnitude; infinity: uniform in [0, magnitude]
  double prob = 0;           // each drawn operation applies with this probability
  bool increasing = false;   // _RAND_INCREASING_TRANSFORMS
  TimmResample resample = TimmResample::Random;
  std::vector<int64_t> fill;  // the geometric operations' fill per channel (timm's img_mean)
};

// The operations in torchvision's order (its _augmentation_space): a draw's index names one.
inline constexpr int64_t kAutoAugmentOps = 14;

// What each image drew: B×num_ops operation indices (into `names`), and the signed magnitude torchvision's _apply_op
// receives (timm's: the argument its level function gives the operation). timm's also: whether each applied, and
// whether a geometric one resampled bicubic (else bilinear).
struct AutoAugmentDraws {
  torch::Tensor ops;         // int64
  torch::Tensor magnitudes;  // float64
  torch::Tensor applied;     // bool, timm's only
  torch::Tensor bicubic;     // bool, timm's only
  std::vector<const char*> names;
};

// x: B×C×H×W float32 holding integer pixel values in [0, 255] (C is 1 or 3). Returns the same kind of tensor.
torch::Tensor auto_augment(const torch::Tensor& x, const AutoAugmentConfig& c, at::Generator& gen,
                           AutoAugmentDraws* draws = nullptr);

// timm's RandAugment (timm_augment.cpp), which auto_augment() runs for its kind; its operations' names.
torch::Tensor timm_rand_augment(const torch::Tensor& x, const AutoAugmentConfig& c, at::Generator& gen,
                                AutoAugmentDraws* draws);
const std::vector<const char*>& timm_rand_augment_names(bool increasing);

// Histogram equalisation of uint8-valued pixels per image and channel: torchvision's equalize, which is Pillow's
// ImageOps.equalize.
torch::Tensor equalize(const torch::Tensor& x);

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
