#include "models/shortcut.h"

#include <torch/nn/modules/linear.h>

#include <limits>

#include "models/layers.h"
#include "models/sync_batch_norm.h"

namespace rt {

Shortcut Shortcut::make(torch::nn::Module& owner, int64_t in, int64_t out, int64_t stride, ShortcutKind kind,
                        double scale, bool projection_bn, bool avg_down) {
  Shortcut s;
  s.kind_ = kind;
  s.scale_ = scale;
  const bool shape_changes = stride != 1 || in != out;
  const bool project = kind == ShortcutKind::C || (kind == ShortcutKind::B && shape_changes);
  if (project) {
    s.avg_down_ = avg_down;
    s.pool_stride_ = avg_down ? stride : 1;
    s.conv_ = conv1x1(in, out, avg_down ? 1 : stride);
    torch::nn::Sequential seq;
    if (avg_down) seq->push_back(torch::nn::Identity());  // the pool: no parameters, only its place in the names
    seq->push_back(s.conv_);
    if (projection_bn) {
      s.bn_ = torch::nn::BatchNorm2d(out);
      seq->push_back(s.bn_);
    }
    owner.register_module("downsample", seq);
  } else if (kind == ShortcutKind::A) {
    s.stride_ = stride;
    s.pad_channels_ = out - in;
  }
  return s;
}

torch::Tensor Shortcut::operator()(const torch::Tensor& x) {
  torch::Tensor y = x;
  if (conv_) {
    if (pool_stride_ > 1)
      y = torch::avg_pool2d(y, {2, 2}, {pool_stride_, pool_stride_}, {0, 0}, /*ceil_mode=*/true,
                            /*count_include_pad=*/false);
    y = apply_conv(conv_, y);
    if (bn_) y = apply_bn(bn_, y);
  } else {
    if (stride_ > 1) y = y.slice(2, 0, y.size(2), stride_).slice(3, 0, y.size(3), stride_);
    if (pad_channels_ > 0) y = torch::constant_pad_nd(y, {0, 0, 0, 0, 0, pad_channels_});
  }
  return scale_ == 1.0 ? y : y * scale_;
}

std::string Shortcut::trace(GraphBuilder& g, const std::string& prefix, const std::string& x) const {
  std::string y = x;
  if (conv_) {
    const int first = avg_down_ ? 1 : 0;  // avg_down: "downsample.0" is the pool
    if (pool_stride_ > 1) {
      const Shape& in = g.shape(y);
      const auto ceil_out = [&](int64_t v) { return (v - 2 + pool_stride_ - 1) / pool_stride_ + 1; };
      GraphNode pool;
      pool.op = "AveragePool";
      pool.name = prefix + "downsample.0";
      pool.inputs = {y};
      pool.int_attrs = {{"kernel_shape", {2, 2}},
                        {"strides", {pool_stride_, pool_stride_}},
                        {"pads", {0, 0, 0, 0}},
                        {"ceil_mode", {1}},
                        {"count_include_pad", {0}}};
      pool.output_shape = {in[0], in[1], ceil_out(in[2]), ceil_out(in[3])};
      pool.macs = in[1] * in[2] * in[3];
      y = g.add(std::move(pool));
    }
    y = trace_conv(g, conv_, prefix + "downsample." + std::to_string(first), y);
    if (bn_) y = trace_bn(g, bn_, prefix + "downsample." + std::to_string(first + 1), y);
  } else {
    if (stride_ > 1) {
      const Shape& in = g.shape(y);
      GraphNode node;
      node.op = "Slice";
      node.name = prefix + "shortcut.subsample";
      const int64_t big = std::numeric_limits<int64_t>::max();
      node.inputs = {y, g.constant(node.name + ".starts", torch::tensor({int64_t{0}, int64_t{0}})),
                     g.constant(node.name + ".ends", torch::tensor({big, big})),
                     g.constant(node.name + ".axes", torch::tensor({int64_t{2}, int64_t{3}})),
                     g.constant(node.name + ".steps", torch::tensor({stride_, stride_}))};
      node.output_shape = {in[0], in[1], (in[2] + stride_ - 1) / stride_, (in[3] + stride_ - 1) / stride_};
      y = g.add(std::move(node));
    }
    if (pad_channels_ > 0) {
      Shape out = g.shape(y);
      GraphNode node;
      node.op = "Pad";
      node.name = prefix + "shortcut.pad";
      node.inputs = {
          y, g.constant(node.name + ".pads", torch::tensor({int64_t{0}, int64_t{0}, int64_t{0}, int64_t{0}, int64_t{0},
                                                            pad_channels_, int64_t{0}, int64_t{0}}))};
      out[1] += pad_channels_;
      node.output_shape = out;
      y = g.add(std::move(node));
    }
  }
  return scale_ == 1.0 ? y : trace_scale(g, prefix + "shortcut.scale", y, scale_);
}

}  // namespace rt
