#pragma once
// A labelled image set in native memory: uint8 pixels (or float32 values) N×C×H×W plus int64 labels.
// No float copy of the whole set is ever made; batches are converted as they are drawn.
#include <torch/types.h>

#include <cstdint>

namespace rt {

struct DatasetStats {
  torch::Tensor mean_image;    // C×H×W, in [0, 1] units for uint8 pixels (the paper's per-pixel mean)
  torch::Tensor channel_mean;  // C
  torch::Tensor channel_std;   // C (population std over every pixel of the channel)
};

struct TensorDataset {
  torch::Tensor images;  // N×C×H×W, uint8 or float32
  torch::Tensor labels;  // N, int64
  int64_t num_classes = 0;

  // Checks shapes, dtypes and every label against num_classes (ERR_DATASET naming the first bad one).
  static TensorDataset make(torch::Tensor images, torch::Tensor labels, int64_t num_classes);

  int64_t size() const { return images.size(0); }
  TensorDataset subset(const torch::Tensor& indices) const;
  TensorDataset to(const torch::Device& device) const;
  DatasetStats stats() const;
  torch::Tensor label_counts() const;
};

// Pixels as float in [0, 1] (uint8 / 255) or float data as it is.
torch::Tensor to_unit_float(const torch::Tensor& images, torch::ScalarType dtype = torch::kFloat32);

}  // namespace rt
