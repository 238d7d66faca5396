#include "models/resnet.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/nn/functional/pooling.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/container/sequential.h>

#include <cmath>
#include <limits>
#include <sstream>

#include "common/error.h"
#include "models/layers.h"
#include "models/sync_batch_norm.h"

namespace rt {

namespace nn = torch::nn;
namespace F = torch::nn::functional;

ResNetImpl::ResNetImpl(NetSpec spec) : spec_(std::move(spec)) {
  if (spec_.depths.empty() || spec_.depths.size() != spec_.widths.size())
    throw invalid("depths and widths must be non-empty and of the same length");
  if (spec_.groups < 1 || spec_.width_per_group < 1) throw invalid("groups and width per group must be at least 1");
  for (int64_t planes : spec_.widths)
    if (spec_.block == BlockKind::Bottleneck && bottleneck_width(planes, spec_.groups, spec_.width_per_group) < 1)
      throw invalid("a bottleneck of width " + std::to_string(planes) + " has no channel at " +
                    std::to_string(spec_.width_per_group) + " per group");
  const bool imagenet = spec_.stem == StemKind::ImageNet;
  if (spec_.deep_stem && !imagenet) throw invalid("the deep stem replaces the ImageNet stem's 7x7 convolution");
  // The deep stem (ResNet-C) ends with 2 * stem_width channels, as timm's "deep" stem.
  const int64_t stem_width = spec_.deep_stem ? 2 * spec_.stem_width : spec_.widths[0];
  if (spec_.deep_stem) {
    const int64_t w = spec_.stem_width;
    nn::Sequential stem;
    for (int i = 0; i < 3; ++i) {
      deep_stem_[i] = i == 0 ? conv3x3(spec_.in_channels, w, 2) : conv3x3(w, i == 2 ? stem_width : w);
      stem->push_back(deep_stem_[i]);
      if (i < 2) {
        deep_stem_bn_[i] = nn::BatchNorm2d(w);
        stem->push_back(deep_stem_bn_[i]);
        stem->push_back(nn::ReLU());
      }
    }
    register_module("conv1", stem);
  } else {
    conv1 = register_module(
        "conv1", imagenet
                     ? nn::Conv2d(nn::Conv2dOptions(spec_.in_channels, stem_width, 7).stride(2).padding(3).bias(false))
                     : conv3x3(spec_.in_channels, stem_width));
  }
  if (!(spec_.preact && !imagenet)) bn1 = register_module("bn1", nn::BatchNorm2d(stem_width));

  // Stochastic depth grows linearly from 0 at the first block to drop_path at the last (timm's schedule).
  int64_t total_blocks = 0;
  for (int64_t d : spec_.depths) total_blocks += d;
  int64_t block_index = 0;
  int64_t channels = stem_width;
  for (size_t s = 0; s < spec_.depths.size(); ++s) {
    nn::ModuleList stage;
    for (int64_t b = 0; b < spec_.depths[s]; ++b) {
      BlockOptions o;
      o.in = channels;
      o.planes = spec_.widths[s];
      o.stride = (s > 0 && b == 0) ? 2 : 1;
      o.shortcut = spec_.shortcut;
      o.shortcut_scale = spec_.shortcut_scale;
      o.stride_on_3x3 = spec_.stride_on_3x3;
      o.groups = spec_.groups;
      o.width_per_group = spec_.width_per_group;
      o.avg_down = spec_.avg_down;
      o.squeeze_excite = spec_.squeeze_excite;
      o.drop_path = total_blocks > 1
                        ? spec_.drop_path * static_cast<double>(block_index) / static_cast<double>(total_blocks - 1)
                        : 0.0;
      ++block_index;
      auto block = make_block(spec_.block, spec_.preact, o);
      stage->push_back(block);
      blocks_.push_back(block);
      channels = o.planes * expansion(spec_.block);
    }
    stages_.push_back(register_module("layer" + std::to_string(s + 1), stage));
  }
  if (spec_.preact) bn_final = register_module("bn_final", nn::BatchNorm2d(channels));
  fc = register_module("fc", nn::Linear(channels, spec_.num_classes));
  reset_parameters(spec_.seed);  // drawn in float32 either way: a float64 net starts from the same weights
  if (spec_.float64) {
    // Module::to(dtype) would convert the integer buffers too (num_batches_tracked): floating-point ones only, as
    // PyTorch's module.double() does.
    torch::NoGradGuard no_grad;
    for (auto& p : parameters()) p.set_data(p.to(torch::kFloat64));
    for (auto& b : buffers())
      if (b.is_floating_point()) b.set_data(b.to(torch::kFloat64));
  }
}

int64_t ResNetImpl::halvings() const {
  return static_cast<int64_t>(spec_.depths.size()) - 1 + (spec_.stem == StemKind::ImageNet ? 2 : 0);
}

int64_t ResNetImpl::min_input_size() const { return int64_t{1} << halvings(); }

void ResNetImpl::check_input(const torch::Tensor& x) const {
  std::ostringstream msg;
  if (x.dim() != 4) {
    msg << "input must have 4 dimensions (N, C, H, W), got " << x.dim();
  } else if (x.size(1) != spec_.in_channels) {
    msg << "input has " << x.size(1) << " channels, the model takes " << spec_.in_channels;
  } else if (x.size(2) < min_input_size() || x.size(3) < min_input_size()) {
    msg << "input " << x.size(2) << "x" << x.size(3) << " is too small: the minimum is " << min_input_size() << "x"
        << min_input_size() << " (the net halves the size " << halvings() << " times)";
  } else if (is_training()) {
    int64_t h = x.size(2), w = x.size(3);
    for (int64_t i = 0; i < halvings(); ++i) h = (h + 1) / 2, w = (w + 1) / 2;
    if (x.size(0) * h * w < 2)
      msg << "batch of " << x.size(0) << " at " << x.size(2) << "x" << x.size(3)
          << " leaves one value per channel in the last stage: batch norm cannot train on it (use a batch of 2 or "
             "more)";
  }
  if (!msg.str().empty()) throw Error("ERR_SHAPE", msg.str());
}

torch::Tensor ResNetImpl::forward(torch::Tensor x) {
  check_input(x);
  if (is_training() && spec_.drop_path > 0.0) {
    // One generator per training forward: the masks follow from the seed the trainer set for this step.
    auto gen = at::make_generator<at::CPUGeneratorImpl>(drop_seed_++);
    for (auto& block : blocks_) block->set_drop_generator(gen);
  }
  if (deep_stem_[0]) {
    for (int i = 0; i < 2; ++i) x = apply_bn(deep_stem_bn_[i], apply_conv(deep_stem_[i], x)).relu_();
    x = apply_conv(deep_stem_[2], x);
  } else {
    x = apply_conv(conv1, x);
  }
  if (bn1) x = apply_bn(bn1, x).relu_();
  if (spec_.stem == StemKind::ImageNet) x = F::max_pool2d(x, F::MaxPool2dFuncOptions(3).stride(2).padding(1));
  if (diagnostics_) grad_norms_->assign(blocks_.size(), std::numeric_limits<double>::quiet_NaN());
  for (size_t i = 0; i < blocks_.size(); ++i) {
    if (diagnostics_ && x.requires_grad()) {
      auto norms = grad_norms_;
      x.register_hook([norms, i](torch::Tensor grad) { (*norms)[i] = grad.norm().item<double>(); });
    }
    x = blocks_[i]->forward(x);
  }
  if (bn_final) x = apply_bn(bn_final, x).relu_();
  x = F::adaptive_avg_pool2d(x, F::AdaptiveAvgPool2dFuncOptions(1)).flatten(1);
  return fc(x);
}

GraphBuilder ResNetImpl::trace(int64_t height, int64_t width) const {
  GraphBuilder g({1, spec_.in_channels, height, width});
  std::string x = g.input();
  if (deep_stem_[0]) {
    for (int i = 0; i < 2; ++i) {
      const std::string at = "conv1." + std::to_string(3 * i);
      x = trace_conv(g, deep_stem_[i], at, x);
      x = trace_bn(g, deep_stem_bn_[i], "conv1." + std::to_string(3 * i + 1), x);
      x = trace_relu(g, "conv1." + std::to_string(3 * i + 2), x);
    }
    x = trace_conv(g, deep_stem_[2], "conv1.6", x);
  } else {
    x = trace_conv(g, conv1, "conv1", x);
  }
  if (bn1) x = trace_relu(g, "relu", trace_bn(g, bn1, "bn1", x));
  if (spec_.stem == StemKind::ImageNet) {
    const Shape& in = g.shape(x);
    GraphNode pool;
    pool.op = "MaxPool";
    pool.name = "maxpool";
    pool.inputs = {x};
    pool.int_attrs = {{"kernel_shape", {3, 3}}, {"strides", {2, 2}}, {"pads", {1, 1, 1, 1}}};
    pool.output_shape = {in[0], in[1], window_out(in[2], 3, 2, 1), window_out(in[3], 3, 2, 1)};
    x = g.add(std::move(pool));
  }
  size_t index = 0;
  for (size_t s = 0; s < stages_.size(); ++s)
    for (size_t b = 0; b < stages_[s]->size(); ++b)
      x = blocks_[index++]->trace(g, "layer" + std::to_string(s + 1) + "." + std::to_string(b) + ".", x);
  if (bn_final) x = trace_relu(g, "relu_final", trace_bn(g, bn_final, "bn_final", x));
  const Shape& in = g.shape(x);
  GraphNode gap;
  gap.op = "GlobalAveragePool";
  gap.name = "avgpool";
  gap.inputs = {x};
  gap.output_shape = {in[0], in[1], 1, 1};
  gap.macs = in[1] * in[2] * in[3];
  x = g.add(std::move(gap));
  GraphNode flat;
  flat.op = "Flatten";
  flat.name = "flatten";
  flat.inputs = {x};
  flat.int_attrs = {{"axis", {1}}};
  flat.output_shape = {in[0], in[1]};
  x = g.add(std::move(flat));
  trace_linear(g, fc, "fc", x);
  return g;
}

namespace {

// nn.Linear's default (kaiming uniform with a = √5): weights and bias uniform in ±1/√fan_in.
void init_linear(nn::Linear& fc, at::Generator& gen) {
  const double bound = 1.0 / std::sqrt(static_cast<double>(fc->options.in_features()));
  fc->weight.uniform_(-bound, bound, gen);
  fc->bias.uniform_(-bound, bound, gen);
}

}  // namespace

void ResNetImpl::reset_parameters(uint64_t seed) {
  torch::NoGradGuard no_grad;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  for (auto& module : modules(/*include_self=*/false)) {
    if (auto* conv = module->as<nn::Conv2d>()) {
      // kaiming normal, mode fan_out, relu gain: std = √(2 / (out_channels · k · k))
      const auto& w = conv->weight;
      const double fan_out = static_cast<double>(w.size(0) * w.size(2) * w.size(3));
      conv->weight.normal_(0.0, std::sqrt(2.0 / fan_out), gen);
      // A bias (squeeze-and-excitation's): nn.Conv2d's default, uniform in ±1/√fan_in.
      if (conv->options.bias()) {
        const double bound = 1.0 / std::sqrt(static_cast<double>(w.size(1) * w.size(2) * w.size(3)));
        conv->bias.uniform_(-bound, bound, gen);
      }
    } else if (auto* bn = module->as<nn::BatchNorm2d>()) {
      bn->weight.fill_(1.0);
      bn->bias.zero_();
      bn->reset_running_stats();
    }
  }
  init_linear(fc, gen);
  // Zero γ in each block's last BN: the block then outputs its shortcut alone, and training starts from
  // a shallower effective net (Goyal et al.; torchvision's zero_init_residual).
  if (spec_.zero_init_residual)
    for (auto& block : blocks_) block->last_bn()->weight.zero_();
}

void ResNetImpl::replace_head(int64_t num_classes, uint64_t seed) {
  const auto device = fc->weight.device();
  auto fresh = nn::Linear(fc->options.in_features(), num_classes);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  {
    torch::NoGradGuard no_grad;
    init_linear(fresh, gen);
  }
  fresh->to(device, dtype());
  fc = replace_module("fc", fresh);
  spec_.num_classes = num_classes;
}

void ResNetImpl::set_diagnostics(bool on) {
  diagnostics_ = on;
  for (auto& block : blocks_) block->record_response(on);
}

std::vector<double> ResNetImpl::response_stds() const {
  std::vector<double> out;
  for (const auto& block : blocks_) out.push_back(block->last_response_std());
  return out;
}

std::vector<double> ResNetImpl::input_grad_norms() const { return *grad_norms_; }

}  // namespace rt
