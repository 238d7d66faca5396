#include "models/layers.h"

#include <ATen/Context.h>
#include <ATen/ops/mkldnn_convolution.h>
#include <torch/autograd.h>

#include "device/runtime.h"

namespace rt {

namespace nn = torch::nn;

nn::Conv2d conv3x3(int64_t in, int64_t out, int64_t stride, int64_t groups) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, 3).stride(stride).padding(1).groups(groups).bias(false));
}

nn::Conv2d conv1x1(int64_t in, int64_t out, int64_t stride) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, 1).stride(stride).bias(false));
}

torch::Tensor fast_conv2d(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                          int64_t stride, int64_t pad, int64_t groups) {
  if (onednn_enabled() && !torch::GradMode::is_enabled() && x.device().is_cpu() && x.scalar_type() == torch::kFloat32)
    return at::mkldnn_convolution(x, weight, bias, {pad, pad}, {stride, stride}, {1, 1}, groups);
  return at::conv2d(x, weight, bias, {stride, stride}, {pad, pad}, {1, 1}, groups);
}

torch::Tensor apply_conv(const nn::Conv2d& conv, const torch::Tensor& x) {
  return fast_conv2d(x, conv->weight, conv->bias, (*conv->options.stride())[0], conv->weight.size(2) / 2,
                     conv->options.groups());
}

std::string trace_conv(GraphBuilder& g, const nn::Conv2d& conv, const std::string& name, const std::string& x) {
  const auto& o = conv->options;
  const Shape& in = g.shape(x);
  const int64_t k = (*o.kernel_size())[0], s = (*o.stride())[0];
  const int64_t p = k / 2;  // every convolution here pads by half its kernel (7x7: 3, 3x3: 1, 1x1: 0)
  const int64_t groups = o.groups();
  const int64_t out_c = o.out_channels(), h = window_out(in[2], k, s, p), w = window_out(in[3], k, s, p);
  GraphNode node;
  node.op = "Conv";
  node.name = name;
  node.inputs = {x, g.weight(name + ".weight", conv->weight)};
  if (o.bias()) node.inputs.push_back(g.weight(name + ".bias", conv->bias));
  node.int_attrs = {{"kernel_shape", {k, k}}, {"strides", {s, s}}, {"pads", {p, p, p, p}}, {"group", {groups}}};
  node.output_shape = {in[0], out_c, h, w};
  node.params = conv->weight.numel() + (o.bias() ? conv->bias.numel() : 0);
  node.macs = out_c * h * w * (in[1] / groups) * k * k;
  return g.add(std::move(node));
}

std::string trace_bn(GraphBuilder& g, const nn::BatchNorm2d& bn, const std::string& name, const std::string& x) {
  GraphNode node;
  node.op = "BatchNormalization";
  node.name = name;
  node.inputs = {x, g.weight(name + ".weight", bn->weight), g.weight(name + ".bias", bn->bias),
                 g.weight(name + ".running_mean", bn->running_mean), g.weight(name + ".running_var", bn->running_var)};
  node.float_attrs = {{"epsilon", bn->options.eps()}, {"momentum", 1.0 - bn->options.momentum().value()}};
  node.output_shape = g.shape(x);
  node.params = bn->weight.numel() + bn->bias.numel();
  return g.add(std::move(node));
}

std::string trace_relu(GraphBuilder& g, const std::string& name, const std::string& x) {
  GraphNode node;
  node.op = "Relu";
  node.name = name;
  node.inputs = {x};
  node.output_shape = g.shape(x);
  return g.add(std::move(node));
}

std::string trace_add(GraphBuilder& g, const std::string& name, const std::string& a, const std::string& b) {
  GraphNode node;
  node.op = "Add";
  node.name = name;
  node.inputs = {a, b};
  node.output_shape = g.shape(a);
  return g.add(std::move(node));
}

std::string trace_scale(GraphBuilder& g, const std::string& name, const std::string& x, double scale) {
  GraphNode node;
  node.op = "Mul";
  node.name = name;
  node.inputs = {x, g.constant(name + ".scale", torch::tensor({static_cast<float>(scale)}))};
  node.output_shape = g.shape(x);
  return g.add(std::move(node));
}

std::string trace_linear(GraphBuilder& g, const nn::Linear& fc, const std::string& name, const std::string& x) {
  const Shape& in = g.shape(x);
  GraphNode node;
  node.op = "Gemm";
  node.name = name;
  node.inputs = {x, g.weight(name + ".weight", fc->weight), g.weight(name + ".bias", fc->bias)};
  node.int_attrs = {{"transB", {1}}};
  node.output_shape = {in[0], fc->options.out_features()};
  node.params = fc->weight.numel() + fc->bias.numel();
  node.macs = fc->options.in_features() * fc->options.out_features();
  return g.add(std::move(node));
}

}  // namespace rt
