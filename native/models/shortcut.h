#pragma once
// The one place that decides how a block's input reaches the addition (options A, B, C, none, and the
// scale λ of h(x) = λx). Blocks receive a ready-made Shortcut and only call it.
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>

#include <string>

#include "models/graph.h"
#include "models/spec.h"

namespace rt {

class Shortcut {
 public:
  Shortcut() = default;

  // Registers a "downsample" projection on `owner` (torchvision's name) when the option asks for one.
  // `projection_bn`: the original blocks follow the 1x1 conv with BN; pre-activation blocks do not.
  // `avg_down` (ResNet-D, timm's avg_down): the projection is a 2x2 average pool where it strides (ceil mode,
  // padding not counted; an identity where it does not), then a stride-1 1x1 and BN: "downsample.1" and ".2".
  static Shortcut make(torch::nn::Module& owner, int64_t in, int64_t out, int64_t stride, ShortcutKind kind,
                       double scale, bool projection_bn, bool avg_down = false);

  bool present() const { return kind_ != ShortcutKind::None; }
  bool projects() const { return static_cast<bool>(conv_); }
  torch::Tensor operator()(const torch::Tensor& x);
  std::string trace(GraphBuilder& g, const std::string& prefix, const std::string& x) const;

 private:
  ShortcutKind kind_ = ShortcutKind::None;
  int64_t stride_ = 1;
  int64_t pad_channels_ = 0;  // option A: zero channels appended after the input's own
  double scale_ = 1.0;
  bool avg_down_ = false;
  int64_t pool_stride_ = 1;  // avg_down: the pool's stride (1: no pool)
  // The projection, registered as a Sequential named "downsample" (0: conv, 1: BN), held typed here.
  torch::nn::Conv2d conv_{nullptr};
  torch::nn::BatchNorm2d bn_{nullptr};
};

}  // namespace rt
