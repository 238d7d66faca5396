#pragma once
// Evaluation: loss, top-1 and top-5 error, per-class accuracy and the confusion matrix of a dataset.
#include <torch/types.h>

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "data/augment.h"
#include "data/tensor_dataset.h"
#include "models/resnet.h"

namespace rt {

struct EvalMetrics {
  std::string split;
  int64_t count = 0;
  double loss = 0, top1_error = 0, top5_error = 0;
  std::vector<double> per_class_accuracy;  // NaN for a class with no image
  std::vector<int64_t> confusion;          // row-major [true class][predicted class]
  int64_t num_classes = 0;
};

// A distributed evaluation: this rank takes every world-th image from its rank on (no padding: each image is
// counted once), and `sum` adds a tensor of sums over the ranks, in place.
struct EvalShard {
  int64_t rank = 0, world = 1;
  std::function<void(torch::Tensor&)> sum;
};

// Runs `net` in eval mode over `data` (restoring its mode after); `cancel` stops between batches. With `shard` the
// ranks share the work and every rank returns the metrics of the whole set.
EvalMetrics evaluate(ResNet& net, const TensorDataset& data, const AugmentConfig& augment, int64_t batch_size,
                     const torch::Device& device, const std::string& split, const std::atomic<bool>* cancel = nullptr,
                     const EvalShard* shard = nullptr);

struct MeterSums {
  double loss_sum = 0;
  int64_t wrong = 0, images = 0;
};

// Running sums of training loss and errors kept on the device (no sync per iteration).
class TrainMeter {
 public:
  void add(const torch::Tensor& logits, const torch::Tensor& labels, const torch::Tensor& loss);
  // Reads and resets: {mean loss, top-1 error, images}; syncs with the device once.
  struct Window {
    double loss = 0, error = 0;
    int64_t images = 0;
  };
  Window take();
  MeterSums peek() const;  // syncs; leaves the sums in place
  void restore(const MeterSums& sums);

 private:
  torch::Tensor loss_sum_, wrong_sum_;
  int64_t images_ = 0;
};

}  // namespace rt
