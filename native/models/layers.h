#pragma once
// The small pieces every block is made of (torchvision's conv3x3/conv1x1, all without bias, as BN follows),
// and how each one describes itself in a GraphBuilder.
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include <string>

#include "models/graph.h"

namespace rt {

torch::nn::Conv2d conv3x3(int64_t in, int64_t out, int64_t stride = 1, int64_t groups = 1);
torch::nn::Conv2d conv1x1(int64_t in, int64_t out, int64_t stride = 1);

// A convolution padded by `pad` on each side. Without autograd, a float CPU input (dense, or a oneDNN tensor with
// a reordered weight) goes to oneDNN directly: libtorch 1.x sends a single small image to im2col on the system
// BLAS (Debian's reference BLAS, 10-50x slower).
torch::Tensor fast_conv2d(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                          int64_t stride, int64_t pad, int64_t groups = 1);
// conv(x) through fast_conv2d; every conv here pads by half its kernel.
torch::Tensor apply_conv(const torch::nn::Conv2d& conv, const torch::Tensor& x);

// Each returns the name of the value it produced; `name` is the module path ("layer1.0.conv1").
std::string trace_conv(GraphBuilder& g, const torch::nn::Conv2d& conv, const std::string& name, const std::string& x);
std::string trace_bn(GraphBuilder& g, const torch::nn::BatchNorm2d& bn, const std::string& name, const std::string& x);
std::string trace_relu(GraphBuilder& g, const std::string& name, const std::string& x);
std::string trace_add(GraphBuilder& g, const std::string& name, const std::string& a, const std::string& b);
std::string trace_scale(GraphBuilder& g, const std::string& name, const std::string& x, double scale);
std::string trace_linear(GraphBuilder& g, const torch::nn::Linear& fc, const std::string& name, const std::string& x);

// Output size of a convolution or pooling window along one axis.
inline int64_t window_out(int64_t in, int64_t kernel, int64_t stride, int64_t pad) {
  return (in + 2 * pad - kernel) / stride + 1;
}

}  // namespace rt
