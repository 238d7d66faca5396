#include "infer/fused.h"

#include <ATen/Context.h>
#include <ATen/ops/mkldnn_reorder_conv2d_weight.h>
#include <torch/nn/functional/pooling.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "common/error.h"
#include "device/compute_thread.h"
#include "device/runtime.h"
#include "infer/onednn_program.h"
#include "models/layers.h"

namespace rt {

namespace {

std::map<std::string, torch::Tensor> named_state(ResNetImpl& net) {
  std::map<std::string, torch::Tensor> out;
  // The folded net runs in float32 whatever the model's element type (a float64 model folds to float32 too).
  const auto float32 = [](const torch::Tensor& t) { return t.is_floating_point() ? t.to(torch::kFloat32) : t; };
  for (const auto& p : net.named_parameters()) out[p.key()] = float32(p.value().detach());
  for (const auto& b : net.named_buffers()) out[b.key()] = float32(b.value().detach());
  return out;
}

}  // namespace

FusedNet::~FusedNet() = default;

std::shared_ptr<FusedNet> FusedNet::build(ResNetImpl& net, int64_t height, int64_t width, bool channels_last,
                                          bool onednn, InferencePrecision precision, const torch::Tensor& calibration) {
  torch::NoGradGuard no_grad;
  GraphBuilder graph = net.trace(height, width);
  auto state = named_state(net);
  auto constant = [&](const std::string& name) -> torch::Tensor {
    for (const auto& c : graph.constants())
      if (c.first == name) return c.second;
    throw invalid("fused net: unknown constant " + name);
  };
  auto fused = std::make_shared<FusedNet>();
  fused->channels_last_ = channels_last;
  std::map<std::string, int> ids{{graph.input(), 0}};
  int next = 1;
  std::map<std::string, int> readers;  // how many nodes read each value
  for (const auto& n : graph.nodes())
    for (const auto& in : n.inputs) ++readers[in];
  const auto& nodes = graph.nodes();
  for (size_t i = 0; i < nodes.size(); ++i) {
    const GraphNode& n = nodes[i];
    FusedOp op;
    op.name = n.name;
    op.in0 = ids.at(n.inputs[0]);
    const auto ints = [&](const char* key) { return n.int_attrs.at(key); };
    if (n.op == "Conv") {
      op.kind = FusedOp::Kind::Conv;
      op.weight = state.at(n.inputs[1]).clone();
      op.bias =
          n.inputs.size() > 2 ? state.at(n.inputs[2]).clone() : torch::zeros({op.weight.size(0)}, op.weight.options());
      op.kernel = ints("kernel_shape")[0];
      op.stride = ints("strides")[0];
      op.pad = ints("pads")[0];
      op.groups = ints("group")[0];
      // Fold a BatchNormalization that is this convolution's only reader.
      if (i + 1 < nodes.size() && nodes[i + 1].op == "BatchNormalization" && nodes[i + 1].inputs[0] == n.output &&
          readers[n.output] == 1) {
        const GraphNode& bn = nodes[i + 1];
        const auto gamma = state.at(bn.inputs[1]), beta = state.at(bn.inputs[2]), mean = state.at(bn.inputs[3]),
                   var = state.at(bn.inputs[4]);
        const auto factor = gamma / (var + bn.float_attrs.at("epsilon")).sqrt();
        op.weight = op.weight * factor.view({-1, 1, 1, 1});
        op.bias = beta + (op.bias - mean) * factor;
        ++fused->folded_;
        ++i;
      }
      if (channels_last) op.weight = op.weight.contiguous(torch::MemoryFormat::ChannelsLast);
    } else if (n.op == "BatchNormalization") {
      // Not after a convolution (pre-activation nets): a per-channel affine map.
      op.kind = FusedOp::Kind::Affine;
      const auto gamma = state.at(n.inputs[1]), beta = state.at(n.inputs[2]), mean = state.at(n.inputs[3]),
                 var = state.at(n.inputs[4]);
      const auto factor = gamma / (var + n.float_attrs.at("epsilon")).sqrt();
      op.weight = factor.view({1, -1, 1, 1}).clone();
      op.bias = (beta - mean * factor).view({1, -1, 1, 1});
    } else if (n.op == "Relu") {
      op.kind = FusedOp::Kind::Relu;
    } else if (n.op == "Add") {
      op.kind = FusedOp::Kind::Add;
      op.in1 = ids.at(n.inputs[1]);
    } else if (n.op == "Mul" && ids.count(n.inputs[1])) {
      op.kind = FusedOp::Kind::Mul;
      op.in1 = ids.at(n.inputs[1]);
    } else if (n.op == "Mul") {
      op.kind = FusedOp::Kind::Scale;
      op.scale = constant(n.inputs[1]).item<double>();
    } else if (n.op == "Sigmoid") {
      op.kind = FusedOp::Kind::Sigmoid;
    } else if (n.op == "AveragePool") {
      op.kind = FusedOp::Kind::AvgPool;
      op.kernel = ints("kernel_shape")[0];
      op.stride = ints("strides")[0];
    } else if (n.op == "Slice") {
      op.kind = FusedOp::Kind::Subsample;
      op.stride = constant(n.inputs[4])[0].item<int64_t>();
    } else if (n.op == "Pad") {
      op.kind = FusedOp::Kind::PadChannels;
      op.pad = constant(n.inputs[1])[5].item<int64_t>();
    } else if (n.op == "MaxPool") {
      op.kind = FusedOp::Kind::MaxPool;
      op.kernel = ints("kernel_shape")[0];
      op.stride = ints("strides")[0];
      op.pad = ints("pads")[0];
    } else if (n.op == "GlobalAveragePool") {
      op.kind = FusedOp::Kind::GlobalAvgPool;
    } else if (n.op == "Flatten") {
      op.kind = FusedOp::Kind::Flatten;
    } else if (n.op == "Gemm") {
      op.kind = FusedOp::Kind::Linear;
      op.weight = state.at(n.inputs[1]).clone();
      op.bias = state.at(n.inputs[2]).clone();
    } else {
      throw invalid("fused net: unsupported operator " + n.op);
    }
    // A ReLU that is the only reader of a convolution's (or affine's) output runs in place right after it.
    const std::string& result = nodes[i].output;  // after a folded BN, nodes[i] is that BN
    if ((op.kind == FusedOp::Kind::Conv || op.kind == FusedOp::Kind::Affine) && i + 1 < nodes.size() &&
        nodes[i + 1].op == "Relu" && nodes[i + 1].inputs[0] == result && readers[result] == 1) {
      op.relu = true;
      ++i;
    }
    op.out = next++;
    ids[nodes[i].output] = op.out;
    fused->ops_.push_back(std::move(op));
  }
  fused->values_ = next;
  fused->output_ = ids.at(graph.output());
  fused->last_use_.assign(next, -1);
  for (size_t k = 0; k < fused->ops_.size(); ++k) {
    fused->last_use_[fused->ops_[k].in0] = static_cast<int>(k);
    if (fused->ops_[k].in1 >= 0) fused->last_use_[fused->ops_[k].in1] = static_cast<int>(k);
  }
  const torch::Tensor& first = fused->ops_.front().weight;
  if (first.device().is_cpu()) {
    fused->scope_ = std::make_unique<CpuInferenceScope>();
    std::vector<float> ranges;
    if (precision == InferencePrecision::Int8) {
      const int64_t c = net.spec().in_channels;
      if (!calibration.defined() || calibration.dim() != 4 || calibration.size(0) < 1 || calibration.size(1) != c ||
          calibration.size(2) != height || calibration.size(3) != width)
        throw invalid("int8 calibration: images of " + std::to_string(c) + "x" + std::to_string(height) + "x" +
                      std::to_string(width) + " wanted");
      ranges = fused->ranges(calibration.to(torch::kFloat32));
    }
    if (onednn)
      fused->program_ = OneDnnProgram::build(fused->ops_, next, fused->output_, net.spec().in_channels, height, width,
                                             precision, ranges, fused->kernels_reason_);
    else
      fused->kernels_reason_ = "asked for ATen";
  } else {
    fused->kernels_reason_ = "the model is on " + first.device().str();
  }
  // Without the program, one image runs faster on libtorch's oneDNN (mkldnn) tensors with weights reordered once,
  // here, when the net is wide (libtorch reorders every weight on every call): ResNet-18 at 32², 7.4 -> 3.4 ms;
  // ResNet-50 at 224², 51 -> 39 ms. The narrow CIFAR nets lose (ResNet-20: 1.9 -> 2.5 ms), and option A, λ and
  // pre-activation need operators libtorch's oneDNN tensors lack.
  const auto onednn_kernel = [](const FusedOp& op) {
    return op.kind == FusedOp::Kind::Conv || op.kind == FusedOp::Kind::Relu || op.kind == FusedOp::Kind::Add ||
           op.kind == FusedOp::Kind::MaxPool || op.kind == FusedOp::Kind::GlobalAvgPool ||
           op.kind == FusedOp::Kind::Flatten || op.kind == FusedOp::Kind::Linear;
  };
  int64_t widest = 0;
  for (const FusedOp& op : fused->ops_)
    if (op.kind == FusedOp::Kind::Conv) widest = std::max(widest, op.weight.size(0));
  fused->onednn_single_ = !fused->program_ && onednn_enabled() && widest >= 256 && first.device().is_cpu() &&
                          first.scalar_type() == torch::kFloat32 &&
                          std::all_of(fused->ops_.begin(), fused->ops_.end(), onednn_kernel);
  if (fused->onednn_single_)
    for (FusedOp& op : fused->ops_)
      if (op.kind == FusedOp::Kind::Conv)
        op.packed = at::mkldnn_reorder_conv2d_weight(op.weight.contiguous().to_mkldnn(), {op.pad, op.pad},
                                                     {op.stride, op.stride}, {1, 1}, op.groups);
  return fused;
}

torch::Tensor FusedNet::forward(const torch::Tensor& input) const {
  if (program_ && input.device().is_cpu() && input.scalar_type() == torch::kFloat32 && input.dim() == 4) {
    torch::Tensor out = program_->forward(input);
    if (out.defined()) return out;
  }
  return forward_aten(input);
}

std::vector<std::pair<std::string, double>> FusedNet::profile(const torch::Tensor& input) const {
  std::vector<std::pair<std::string, double>> out;
  if (program_ && input.device().is_cpu() && input.scalar_type() == torch::kFloat32 && input.dim() == 4)
    out = program_->profile(input);
  return out;
}

std::vector<float> FusedNet::ranges(const torch::Tensor& images) const {
  std::vector<float> absmax(values_, 0.f);
  for (int64_t i = 0; i < images.size(0); i += 32) forward_aten(images.slice(0, i, i + 32), &absmax);
  return absmax;
}

torch::Tensor FusedNet::forward_aten(const torch::Tensor& input, std::vector<float>* absmax) const {
  namespace F = torch::nn::functional;
  c10::InferenceMode guard;
  std::vector<torch::Tensor> v(values_);
  const bool blocked = onednn_single_ && input.size(0) == 1;
  if (absmax) (*absmax)[0] = std::max((*absmax)[0], input.abs().max().item<float>());
  v[0] = blocked          ? input.contiguous().to_mkldnn()
         : channels_last_ ? input.contiguous(torch::MemoryFormat::ChannelsLast)
                          : input;
  for (size_t k = 0; k < ops_.size(); ++k) {
    const FusedOp& op = ops_[k];
    const torch::Tensor& x = v[op.in0];
    torch::Tensor y;
    switch (op.kind) {
      case FusedOp::Kind::Conv:
        y = fast_conv2d(x, blocked ? op.packed : op.weight, op.bias, op.stride, op.pad, op.groups);
        if (op.relu) y.relu_();
        break;
      case FusedOp::Kind::Affine:
        y = x * op.weight + op.bias;
        if (op.relu) y.relu_();
        break;
      case FusedOp::Kind::Relu:
        y = at::relu(x);
        break;
      case FusedOp::Kind::Add:
        y = x + v[op.in1];
        break;
      case FusedOp::Kind::Scale:
        y = x * op.scale;
        break;
      case FusedOp::Kind::Subsample:
        y = x.slice(2, 0, x.size(2), op.stride).slice(3, 0, x.size(3), op.stride);
        break;
      case FusedOp::Kind::PadChannels:
        y = at::constant_pad_nd(x, {0, 0, 0, 0, 0, op.pad});
        break;
      case FusedOp::Kind::MaxPool:
        y = at::max_pool2d(x, {op.kernel, op.kernel}, {op.stride, op.stride}, {op.pad, op.pad});
        break;
      case FusedOp::Kind::AvgPool:
        y = at::avg_pool2d(x, {op.kernel, op.kernel}, {op.stride, op.stride}, {0, 0}, /*ceil_mode=*/true,
                           /*count_include_pad=*/false);
        break;
      case FusedOp::Kind::GlobalAvgPool:
        y = blocked ? at::adaptive_avg_pool2d(x, {1, 1}).to_dense() : x.mean({2, 3}, /*keepdim=*/true);
        break;
      case FusedOp::Kind::Flatten:
        y = x.flatten(1);
        break;
      case FusedOp::Kind::Sigmoid:
        y = at::sigmoid(x);
        break;
      case FusedOp::Kind::Mul:
        y = x * v[op.in1];
        break;
      case FusedOp::Kind::Linear:
        y = at::linear(x, op.weight, op.bias);
        break;
    }
    if (absmax) {
      float& m = (*absmax)[op.out];
      m = std::max(m, y.is_mkldnn() ? 0.f : y.abs().max().item<float>());
    }
    v[op.out] = std::move(y);
    // Free what no later op reads.
    if (last_use_[op.in0] == static_cast<int>(k) && op.in0 != output_) v[op.in0] = torch::Tensor();
    if (op.in1 >= 0 && last_use_[op.in1] == static_cast<int>(k) && op.in1 != output_) v[op.in1] = torch::Tensor();
  }
  return v[output_];
}

}  // namespace rt
