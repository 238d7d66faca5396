#pragma once
// An eval-only snapshot of a network for fast inference: the traced operators replayed with ATen calls,
// each BatchNormalization folded into the convolution before it (w' = w·γ/σ, b' = β − μ·γ/σ), the ReLU
// after a convolution done in place, and channels_last weights where oneDNN is faster with them. On the CPU a
// single large image runs on oneDNN's blocked tensors, with the convolution weights reordered once.
#include <torch/types.h>

#include <memory>
#include <vector>

#include "models/resnet.h"

namespace rt {

class FusedNet {
 public:
  // Traces `net` at height×width (any batch), folds and copies the weights.
  static std::shared_ptr<FusedNet> build(ResNetImpl& net, int64_t height, int64_t width, bool channels_last);
  torch::Tensor forward(const torch::Tensor& input) const;
  int64_t folded() const { return folded_; }

 private:
  struct Op {
    enum class Kind {
      Conv,
      Affine,
      Relu,
      Add,
      Scale,
      Subsample,
      PadChannels,
      MaxPool,
      AvgPool,  // ResNet-D's shortcut: 2x2, ceil mode, padding not counted
      GlobalAvgPool,
      Flatten,
      Sigmoid,
      Mul,  // squeeze-and-excitation's scale: in0 * in1 (broadcast)
      Linear
    };
    Kind kind;
    int in0 = -1, in1 = -1, out = -1;
    torch::Tensor weight, bias;  // conv / linear / affine (scale, shift)
    torch::Tensor packed;        // conv weight in oneDNN's layout (onednn_single_)
    int64_t stride = 1, pad = 0, kernel = 1, groups = 1;
    double scale = 1.0;
    bool relu = false;  // fused ReLU after a convolution or an affine
  };
  std::vector<Op> ops_;
  std::vector<int> last_use_;  // per value: index of the last op reading it
  int values_ = 0, output_ = -1;
  bool channels_last_ = false;
  bool onednn_single_ = false;  // one image at a time runs on oneDNN tensors
  int64_t folded_ = 0;
};

}  // namespace rt
