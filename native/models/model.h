#pragma once
// A network together with what an addon user needs around it: its device, exclusive use between
// concurrent calls (forward, load, train), and its state as named tensors in torchvision's order.
#include <torch/types.h>

#include <atomic>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "models/resnet.h"
#include "models/spec.h"

namespace rt {

struct NamedTensor {
  std::string name;
  torch::Tensor tensor;
  bool parameter = false;  // false: a buffer (running statistics, step counter)
};

class Model {
 public:
  explicit Model(NetSpec spec);

  ResNet& net() { return net_; }
  const NetSpec& spec() const { return net_->spec(); }
  torch::Device device() const { return device_; }

  // Exclusive use for one operation. While a training run holds the model, other users fail fast
  // (ERR_BUSY) instead of waiting for minutes.
  std::unique_lock<std::mutex> acquire(const char* operation);
  // A training run holds the model from start to end.
  std::unique_lock<std::mutex> acquire_for_training();
  void release_training() { training_run_ = false; }

  void to(const std::string& device);
  // Logits for a CPU float input; `force_eval` runs in eval mode and restores the previous mode.
  torch::Tensor forward(const torch::Tensor& input, bool force_eval);

  std::vector<NamedTensor> state() const;         // live tensors, parameters then buffers per module
  std::vector<NamedTensor> state_on_cpu() const;  // contiguous CPU copies, safe to hand out
  // Copies each entry into the tensor of that name; every name must exist and every shape match.
  void load_state(const std::vector<std::pair<std::string, torch::Tensor>>& entries);
  // Freezes (on=false) or unfreezes every parameter under one of the prefixes ("layer1" covers
  // "layer1.0.conv1.weight"); returns how many parameters matched.
  int64_t set_requires_grad(const std::vector<std::string>& prefixes, bool on);

 private:
  ResNet net_;
  torch::Device device_{torch::kCPU};
  std::mutex mutex_;
  std::atomic<bool> training_run_{false};
};

}  // namespace rt
