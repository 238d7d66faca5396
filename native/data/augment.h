#pragma once
// Batched augmentation and normalisation, as tensor ops on the training device (no per-image loop).
// Random draws come from a CPU generator seeded per iteration, so a resumed run augments identically.
#include <torch/types.h>

#include <cstdint>

#include "data/auto_augment.h"

namespace rt {

enum class NormKind { None, PerPixel, PerChannel };

// Every value comes from the facade; none is chosen here.
struct AugmentConfig {
  int64_t pad = 0;                   // pad with zeros and crop back at a random offset (the paper's 4 pixels)
  bool flip = false;                 // random horizontal flip
  bool random_resized_crop = false;  // ImageNet-style scale and aspect augmentation
  double scale_min = 0, scale_max = 0;
  double ratio_min = 0, ratio_max = 0;
  int64_t out_height = 0, out_width = 0;    // size after random-resized-crop (0: the input's)
  int64_t eval_height = 0, eval_width = 0;  // evaluation's size with random-resized-crop (0: out_height/width)
  NormKind norm = NormKind::None;
  torch::Tensor mean;              // C×H×W (per pixel) or C (per channel), in [0, 1] units
  torch::Tensor std;               // C (per channel)
  AutoAugmentConfig auto_augment;  // TrivialAugmentWide or RandAugment, on the pixels before normalisation
  EraseConfig erase;               // random erasing, on the normalised batch
  bool channels_last = false;
  torch::ScalarType dtype = torch::kFloat32;  // the model's: batches are prepared in it
};

// Moves mean/std to `device` and `dtype` (the model's) once, so batches do not copy them every iteration.
AugmentConfig on_device(AugmentConfig config, const torch::Device& device, torch::ScalarType dtype);

// What a batch drew, for inspection (previews, tests): the policy's operations and random erasing's boxes.
struct AugmentDraws {
  AutoAugmentDraws auto_augment;
  torch::Tensor erase_boxes;
};

// A uint8 (or float) batch -> the float batch the net trains on.
torch::Tensor prepare_train_batch(const torch::Tensor& batch, const AugmentConfig& config, uint64_t seed,
                                  AugmentDraws* draws = nullptr);
// Normalisation only (and a resize to the crop size when random-resized-crop trains at another size).
torch::Tensor prepare_eval_batch(const torch::Tensor& batch, const AugmentConfig& config);

}  // namespace rt
