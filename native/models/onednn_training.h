#pragma once
// The training forward and backward of a network on oneDNN directly, for float32 on the CPU. libtorch's own path
// (ResNetImpl::forward under autograd) calls the same oneDNN convolutions, but hands every activation back in
// NCHW or NHWC: each convolution then reorders its input and output, or runs oneDNN's slower NHWC kernels, and
// BatchNorm and ReLU are separate passes over memory. Here activations stay in oneDNN's blocked layout (nChw8c
// with AVX2, nChw16c with AVX-512) from the first convolution to the global pool, BatchNorm runs fused with the
// ReLU that follows it (and the residual add with its ReLU), and every primitive is created once per input shape.
// The network's own trace (ResNetImpl::trace, the ops of its forward) is the program, so every architecture the
// trace describes runs here; the classifier (fc) stays in libtorch's autograd.
//
// One autograd node stands for the whole body: its backward writes the gradients of every convolution and
// BatchNorm parameter, so optimizers, clipping, accumulation and the rest of the trainer see the usual grads.
#include <torch/types.h>

#include <memory>
#include <string>

namespace rt {

class ResNetImpl;

class OneDnnTraining {
 public:
  // Why `net` cannot train on this path in this build and process (empty: it can). Checked once per run; an input
  // shape the primitives refuse is found at the first forward (forward then throws, and the trainer falls back).
  static std::string unsupported(const ResNetImpl& net);
  // The layout's block: 16 channels where oneDNN runs AVX-512, else 8 (0: not built).
  static int64_t block();
  // Why this build has no oneDNN training path (empty: it has one).
  static std::string built();
  // The oneDNN this path runs ("2.6.3": libtorch's own, or the system's beside pip's torch) and the instruction set
  // its kernels use here ("AVX-512 BF16"); empty without the path.
  static std::string version();
  static std::string isa();

  explicit OneDnnTraining(ResNetImpl& net);
  ~OneDnnTraining();
  OneDnnTraining(const OneDnnTraining&) = delete;
  OneDnnTraining& operator=(const OneDnnTraining&) = delete;

  // Builds the primitives for inputs shaped like `x` (once per shape). Throws where oneDNN has no implementation
  // for a layer here; nothing has run yet then, and libtorch's path can take over.
  void prepare(const torch::Tensor& x);
  // Logits of a training-mode forward (BatchNorm on batch statistics, its running statistics updated), with
  // autograd history to every trainable parameter. `x`: float32 N×C×H×W on the CPU, contiguous or channels_last.
  torch::Tensor forward(const torch::Tensor& x);

  struct Plan;

 private:
  ResNetImpl& net_;
  std::shared_ptr<Plan> plan_;  // for the last input shape (the autograd node keeps its own alive)
};

}  // namespace rt
