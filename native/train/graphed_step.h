#pragma once
// The whole training step (forward, loss, backward, SGD update) captured once in a CUDA graph and replayed
// every iteration: for small networks, where launching hundreds of kernels costs more than running them.
// Static shapes: a fixed batch size (drop_last), float32, SGD; the learning rate lives in a device tensor.
#include <torch/types.h>

#include <memory>
#include <utility>

#include "models/resnet.h"
#include "train/optimizer.h"

namespace rt {

class GraphedStep {
 public:
  // Captures the step on a side stream with `x`/`y` as the shapes; that first step is replayed at once,
  // so calling it is one training iteration.
  GraphedStep(ResNet& net, Optimizer& optimizer, double label_smoothing, const torch::Tensor& x, const torch::Tensor& y,
              double lr);
  ~GraphedStep();
  // Copies the batch into the graph's inputs and replays: returns the (static) logits and loss.
  std::pair<torch::Tensor, torch::Tensor> step(const torch::Tensor& x, const torch::Tensor& y, double lr);
  // The logits and loss of the last replay (the captured step's, right after construction).
  std::pair<torch::Tensor, torch::Tensor> outputs() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace rt
