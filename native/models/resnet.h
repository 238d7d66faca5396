#pragma once
// The network: stem, stages of blocks, global average pool, fc. One class serves both families
// (ImageNet: 7x7/2 stem and max pool; CIFAR: 3x3 stem) and every block kind; the NetSpec decides.
// Parameter names follow torchvision: conv1, bn1, layer1.0.conv1, layer2.0.downsample.0, fc, ...
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <memory>
#include <vector>

#include "models/blocks.h"
#include "models/graph.h"
#include "models/spec.h"

namespace rt {

class ResNetImpl : public torch::nn::Module {
 public:
  explicit ResNetImpl(NetSpec spec);

  torch::Tensor forward(torch::Tensor x);
  // The forward pass as operators with shapes, for an input of shape {1, C, H, W}.
  GraphBuilder trace(int64_t height, int64_t width) const;

  const NetSpec& spec() const { return spec_; }
  // The parameters' element type: float32, or float64 when the spec asks for it.
  torch::ScalarType dtype() const { return spec_.float64 ? torch::kFloat64 : torch::kFloat32; }
  // Side of the smallest input every downsampling step can still halve: 2^(number of halvings).
  int64_t min_input_size() const;
  // Throws ERR_SHAPE when x cannot go through the net (channels, size, BN on a single value in training).
  void check_input(const torch::Tensor& x) const;

  // torchvision's initialisation: kaiming normal (fan_out, relu) convs, BN γ=1 β=0, default linear init,
  // optionally each block's last BN γ=0 so that every residual block starts as the identity.
  void reset_parameters(uint64_t seed);
  // A new classifier for `num_classes`, for fine-tuning (default linear init from `seed`).
  void replace_head(int64_t num_classes, uint64_t seed);

  // Diagnostics for the identity analysis (the paper's Fig. 7 and the gradient-flow argument).
  void set_diagnostics(bool on);
  std::vector<double> response_stds() const;     // per block, from the last forward
  std::vector<double> input_grad_norms() const;  // ‖∂E/∂x_l‖ per block, from the last backward

  // Stochastic depth: the seed of the next training forward's masks (each training forward then takes the next).
  void set_drop_path_seed(uint64_t seed) { drop_seed_ = seed; }

 private:
  int64_t halvings() const;

  NetSpec spec_;
  torch::nn::Conv2d conv1{nullptr};                               // the 7x7 (or CIFAR 3x3) stem
  torch::nn::Conv2d deep_stem_[3] = {nullptr, nullptr, nullptr};  // the deep stem: "conv1.0", ".3", ".6"
  torch::nn::BatchNorm2d deep_stem_bn_[2] = {nullptr, nullptr};   // "conv1.1", ".4"
  torch::nn::BatchNorm2d bn1{nullptr};  // absent in the CIFAR pre-activation stem: block 1 normalises
  std::vector<torch::nn::ModuleList> stages_;
  std::vector<std::shared_ptr<BlockImpl>> blocks_;
  torch::nn::BatchNorm2d bn_final{nullptr};  // pre-activation nets end with BN-ReLU before pooling
  torch::nn::Linear fc{nullptr};
  bool diagnostics_ = false;
  uint64_t drop_seed_ = 0;
  std::shared_ptr<std::vector<double>> grad_norms_ = std::make_shared<std::vector<double>>();
};

TORCH_MODULE(ResNet);

}  // namespace rt
