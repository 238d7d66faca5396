#pragma once
// A folded net (FusedNet's ops) as a program of oneDNN primitives, for float32 (bfloat16, int8) inference on the CPU:
// what onnxruntime and torch.compile's CPU backend do with the same library. Activations stay in the layout oneDNN
// picks (blocked, nChw16c / nChw8c) from the first convolution to the global pool; each convolution carries its
// folded BatchNorm as a bias and its ReLU as a post-op, the last convolution of a residual block also the add of
// the shortcut (a sum post-op, in place over the shortcut's buffer when nothing reads it later) and the ReLU
// after it; an SE gate's sigmoid rides on its convolution. Weights are reordered once into the layout each
// convolution's kernel wants (shared by every batch size that wants the same), primitives are made once per
// input shape. Built only with oneDNN 2.x's headers, as the training path (native/models/onednn_training.cpp).
#include <torch/types.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace rt {

struct FusedOp;

// The arithmetic of the inference program: float32; bfloat16 activations and convolution weights (float32
// accumulation); or int8: activations and convolution weights quantized to 8 bits (weights per output channel,
// activations per tensor with scales calibrated on the user's images), int32 accumulation.
enum class InferencePrecision { Float32, BFloat16, Int8 };

class OneDnnProgram {
 public:
  // The program for `ops` (their values numbered 0..values-1, 0 the input, `output` the logits) on inputs of
  // `channels`×`height`×`width`, checked by making its primitives for one image; null with `why` set where this
  // build, the process or an operator rules it out, or where oneDNN has only reference kernels for a layer here.
  // `precision` bfloat16: activations and convolution weights in bfloat16 (oneDNN accumulates in float32; biases,
  // the classifier and the logits stay float32). int8: `ranges` holds each value's largest magnitude on the
  // calibration images (FusedNet::ranges); convolutions, pools and option A's padding run on 8-bit activations
  // (unsigned after a ReLU), the residual's add inside the convolution; what has no int8 kernel here (an SE
  // gate's product, a pre-activation's affine, a lone add) runs in float32 between them; the classifier float32.
  static std::unique_ptr<OneDnnProgram> build(const std::vector<FusedOp>& ops, int values, int output, int64_t channels,
                                              int64_t height, int64_t width, InferencePrecision precision,
                                              const std::vector<float>& ranges, std::string& why);
  ~OneDnnProgram();
  // Logits for `x` (float32 N×C×H×W on the CPU). Undefined where this input shape has no program (oneDNN
  // declined a primitive for it): the caller runs its ATen ops then.
  torch::Tensor forward(const torch::Tensor& x) const;
  // forward(x), timed per primitive: what ran ("conv layer1.0.conv2 +sum +relu, jit:avx512_core") and ms.
  std::vector<std::pair<std::string, double>> profile(const torch::Tensor& x) const;

  struct Impl;

 private:
  explicit OneDnnProgram(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace rt
