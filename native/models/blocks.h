#pragma once
// The four residual blocks of the two papers. Each has a plain twin: the same block built with
// ShortcutKind::None (same layers, no addition).
//   BasicBlock          3x3, BN, ReLU, 3x3, BN, add, ReLU                 (ResNet-18/34, CIFAR nets)
//   Bottleneck          1x1, BN, ReLU, 3x3, BN, ReLU, 1x1 (x4), BN, add, ReLU  (ResNet-50/101/152; with a grouped or
//                       wider 3x3, ResNeXt and Wide ResNet as torchvision builds them)
//   PreActBasicBlock    BN, ReLU, 3x3, BN, ReLU, 3x3, add                 (Identity Mappings)
//   PreActBottleneck    BN, ReLU, 1x1, BN, ReLU, 3x3, BN, ReLU, 1x1, add    (ResNet-164/1001)
#include <ATen/core/Generator.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>

#include <limits>
#include <memory>
#include <string>

#include "models/graph.h"
#include "models/shortcut.h"
#include "models/spec.h"

namespace rt {

struct BlockOptions {
  int64_t in = 0;      // input channels
  int64_t planes = 0;  // base width; the block outputs planes * expansion
  int64_t stride = 1;
  ShortcutKind shortcut = ShortcutKind::B;
  double shortcut_scale = 1.0;
  bool stride_on_3x3 = true;     // bottlenecks only
  int64_t groups = 1;            // bottlenecks only: groups of the 3x3 (ResNeXt)
  int64_t width_per_group = 64;  // bottlenecks only: width = planes * width_per_group / 64 * groups
  bool avg_down = false;         // ResNet-D projection shortcut
  bool squeeze_excite = false;   // SE at the end of the residual branch
  double drop_path = 0.0;        // this block's stochastic-depth probability
};

// timm's SEModule: global average pool, 1x1 conv to `reduced` channels, ReLU, 1x1 conv back, sigmoid, scale.
class SqueezeExciteImpl : public torch::nn::Module {
 public:
  explicit SqueezeExciteImpl(int64_t channels);
  torch::Tensor forward(const torch::Tensor& x);
  std::string trace(GraphBuilder& g, const std::string& prefix, const std::string& x) const;
  // timm's make_divisible(channels / 16, 8, round_limit=0): the reduced width.
  static int64_t reduced(int64_t channels);

 private:
  torch::nn::Conv2d fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(SqueezeExcite);

class BlockImpl : public torch::nn::Module {
 public:
  virtual torch::Tensor forward(const torch::Tensor& x) = 0;
  virtual std::string trace(GraphBuilder& g, const std::string& prefix, const std::string& x) const = 0;
  // The BN whose γ zero-init sets to 0, so that the block starts as the identity.
  virtual torch::nn::BatchNorm2d last_bn() const = 0;

  // Fig. 7: with recording on, forward keeps the std of the residual branch's output (before the add).
  void record_response(bool on) { record_ = on; }
  double last_response_std() const { return response_std_; }
  // The generator of this forward's stochastic-depth masks (the network sets it before each training forward).
  void set_drop_generator(const at::Generator& gen) { drop_gen_ = gen; }

 protected:
  // The residual branch's end: squeeze-and-excitation when present, the recorded response, then stochastic depth.
  torch::Tensor finish(const torch::Tensor& residual);
  std::string trace_finish(GraphBuilder& g, const std::string& prefix, const std::string& residual) const;
  // Registers "se" when the options ask for it (after the block's last BN, before "downsample": timm's order).
  void add_attention(const BlockOptions& o, int64_t channels);
  const torch::Tensor& observe(const torch::Tensor& residual);
  Shortcut shortcut_;

 private:
  bool record_ = false;
  double response_std_ = std::numeric_limits<double>::quiet_NaN();
  SqueezeExcite se_{nullptr};
  double drop_path_ = 0.0;
  at::Generator drop_gen_;
};

class BasicBlockImpl : public BlockImpl {
 public:
  explicit BasicBlockImpl(const BlockOptions& o);
  torch::Tensor forward(const torch::Tensor& x) override;
  std::string trace(GraphBuilder& g, const std::string& prefix, const std::string& x) const override;
  torch::nn::BatchNorm2d last_bn() const override { return bn2; }

 private:
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
};

class BottleneckImpl : public BlockImpl {
 public:
  explicit BottleneckImpl(const BlockOptions& o);
  torch::Tensor forward(const torch::Tensor& x) override;
  std::string trace(GraphBuilder& g, const std::string& prefix, const std::string& x) const override;
  torch::nn::BatchNorm2d last_bn() const override { return bn3; }

 private:
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
};

class PreActBasicBlockImpl : public BlockImpl {
 public:
  explicit PreActBasicBlockImpl(const BlockOptions& o);
  torch::Tensor forward(const torch::Tensor& x) override;
  std::string trace(GraphBuilder& g, const std::string& prefix, const std::string& x) const override;
  torch::nn::BatchNorm2d last_bn() const override { return bn2; }

 private:
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
};

class PreActBottleneckImpl : public BlockImpl {
 public:
  explicit PreActBottleneckImpl(const BlockOptions& o);
  torch::Tensor forward(const torch::Tensor& x) override;
  std::string trace(GraphBuilder& g, const std::string& prefix, const std::string& x) const override;
  torch::nn::BatchNorm2d last_bn() const override { return bn3; }

 private:
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
};

std::shared_ptr<BlockImpl> make_block(BlockKind kind, bool preact, const BlockOptions& o);

}  // namespace rt
