#pragma once
// An eval-only snapshot of a network for fast inference: the traced operators, each BatchNormalization folded
// into the convolution before it (w' = w·γ/σ, b' = β − μ·γ/σ), the ReLU after a convolution fused into it.
// On the CPU in a build with oneDNN 2.x's headers the ops run as oneDNN primitives (native/infer/onednn_program.h:
// prepacked weights, blocked activations, the residual add and its ReLU inside the convolution); elsewhere, and
// for what that program does not take, they replay as ATen calls (channels_last weights where oneDNN is faster
// with them; one large image on oneDNN's blocked tensors, the convolution weights reordered once).
#include <torch/types.h>

#include <memory>
#include <string>
#include <vector>

#include "infer/onednn_program.h"
#include "models/resnet.h"

namespace rt {

// One operator of the folded net. Values are numbered: 0 is the input, every op writes `out`.
struct FusedOp {
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
  std::string name;  // the traced node's module path ("layer1.0.conv1")
  int in0 = -1, in1 = -1, out = -1;
  torch::Tensor weight, bias;  // conv / linear / affine (scale, shift)
  torch::Tensor packed;        // conv weight in oneDNN's layout (onednn_single_)
  int64_t stride = 1, pad = 0, kernel = 1, groups = 1;
  double scale = 1.0;
  bool relu = false;  // fused ReLU after a convolution or an affine
};

class CpuInferenceScope;

class FusedNet {
 public:
  // Traces `net` at height×width (any batch), folds and copies the weights; `onednn`: run on oneDNN's primitives
  // where this build, the CPU and the net allow it. `precision` bfloat16 or int8: that program in that precision,
  // else none; int8 calibrates its scales on `calibration` (N×C×H×W float32 images as the net takes them). On the
  // CPU, callers run forward() on a ComputeThread (device/compute_thread.h).
  static std::shared_ptr<FusedNet> build(ResNetImpl& net, int64_t height, int64_t width, bool channels_last,
                                         bool onednn = true, InferencePrecision precision = InferencePrecision::Float32,
                                         const torch::Tensor& calibration = {});
  // Each value's largest magnitude over `images` (run through the ATen ops, in batches): int8's calibration.
  std::vector<float> ranges(const torch::Tensor& images) const;
  ~FusedNet();
  torch::Tensor forward(const torch::Tensor& input) const;
  // One forward of `input` timed per primitive of the oneDNN program: (what ran, milliseconds) in order; empty
  // where the ATen ops run.
  std::vector<std::pair<std::string, double>> profile(const torch::Tensor& input) const;
  int64_t folded() const { return folded_; }
  // What runs the ops: "onednn" or "aten", and why ATen where the oneDNN program was declined.
  std::string kernels() const { return program_ ? "onednn" : "aten"; }
  const std::string& kernels_reason() const { return kernels_reason_; }

 private:
  // `absmax`: each value's largest magnitude, raised to this input's.
  torch::Tensor forward_aten(const torch::Tensor& input, std::vector<float>* absmax = nullptr) const;
  std::vector<FusedOp> ops_;
  std::vector<int> last_use_;  // per value: index of the last op reading it
  int values_ = 0, output_ = -1;
  bool channels_last_ = false;
  bool onednn_single_ = false;  // one image at a time runs on oneDNN tensors
  int64_t folded_ = 0;
  std::unique_ptr<OneDnnProgram> program_;
  std::unique_ptr<CpuInferenceScope> scope_;  // on the CPU (device/compute_thread.h)
  std::string kernels_reason_;
};

}  // namespace rt
