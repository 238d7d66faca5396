#include "models/blocks.h"

#include <algorithm>

#include "common/error.h"
#include "models/layers.h"
#include "models/sync_batch_norm.h"

namespace rt {

namespace nn = torch::nn;

const torch::Tensor& BlockImpl::observe(const torch::Tensor& residual) {
  if (record_) response_std_ = residual.detach().std().item<double>();
  return residual;
}

int64_t SqueezeExciteImpl::reduced(int64_t channels) {
  const double v = static_cast<double>(channels) / 16.0;
  return std::max<int64_t>(8, static_cast<int64_t>(v + 4.0) / 8 * 8);
}

SqueezeExciteImpl::SqueezeExciteImpl(int64_t channels) {
  const int64_t r = reduced(channels);
  fc1 = register_module("fc1", nn::Conv2d(nn::Conv2dOptions(channels, r, 1)));
  fc2 = register_module("fc2", nn::Conv2d(nn::Conv2dOptions(r, channels, 1)));
}

torch::Tensor SqueezeExciteImpl::forward(const torch::Tensor& x) {
  torch::Tensor s = x.mean({2, 3}, /*keepdim=*/true);
  s = apply_conv(fc2, apply_conv(fc1, s).relu_());
  return x * s.sigmoid();
}

std::string SqueezeExciteImpl::trace(GraphBuilder& g, const std::string& p, const std::string& x) const {
  const Shape in = g.shape(x);
  GraphNode pool;
  pool.op = "GlobalAveragePool";
  pool.name = p + "pool";
  pool.inputs = {x};
  pool.output_shape = {in[0], in[1], 1, 1};
  pool.macs = in[1] * in[2] * in[3];
  std::string s = g.add(std::move(pool));
  s = trace_conv(g, fc2, p + "fc2", trace_relu(g, p + "act", trace_conv(g, fc1, p + "fc1", s)));
  GraphNode gate;
  gate.op = "Sigmoid";
  gate.name = p + "gate";
  gate.inputs = {s};
  gate.output_shape = g.shape(s);
  s = g.add(std::move(gate));
  GraphNode scale;
  scale.op = "Mul";
  scale.name = p + "scale";
  scale.inputs = {x, s};
  scale.output_shape = in;
  scale.macs = in[1] * in[2] * in[3];
  return g.add(std::move(scale));
}

void BlockImpl::add_attention(const BlockOptions& o, int64_t channels) {
  drop_path_ = o.drop_path;
  if (o.squeeze_excite) se_ = register_module("se", SqueezeExcite(channels));
}

torch::Tensor BlockImpl::finish(const torch::Tensor& residual) {
  torch::Tensor r = se_ ? se_->forward(residual) : residual;
  observe(r);
  if (!is_training() || drop_path_ <= 0.0 || !drop_gen_.defined()) return r;
  // timm's drop_path: one Bernoulli(keep) per sample, the kept ones scaled by 1 / keep. Drawn on the CPU from the
  // forward's generator (deterministic from the seed and the iteration, on any device).
  const double keep = 1.0 - drop_path_;
  torch::Tensor mask = torch::empty({r.size(0), 1, 1, 1}, r.options().device(torch::kCPU));
  mask.bernoulli_(keep, drop_gen_);  // takes the generator's lock itself
  mask.div_(keep);
  return r * mask.to(r.device());
}

std::string BlockImpl::trace_finish(GraphBuilder& g, const std::string& p, const std::string& residual) const {
  return se_ ? se_->trace(g, p + "se.", residual) : residual;  // stochastic depth is the identity in eval
}

// ---- original (post-activation) blocks -------------------------------------------------------------

BasicBlockImpl::BasicBlockImpl(const BlockOptions& o) {
  conv1 = register_module("conv1", conv3x3(o.in, o.planes, o.stride));
  bn1 = register_module("bn1", nn::BatchNorm2d(o.planes));
  conv2 = register_module("conv2", conv3x3(o.planes, o.planes));
  bn2 = register_module("bn2", nn::BatchNorm2d(o.planes));
  add_attention(o, o.planes);
  shortcut_ = Shortcut::make(*this, o.in, o.planes, o.stride, o.shortcut, o.shortcut_scale, true, o.avg_down);
}

torch::Tensor BasicBlockImpl::forward(const torch::Tensor& x) {
  torch::Tensor out = apply_bn(bn1, apply_conv(conv1, x)).relu_();
  out = finish(apply_bn(bn2, apply_conv(conv2, out)));
  if (shortcut_.present()) out.add_(shortcut_(x));
  return out.relu_();
}

std::string BasicBlockImpl::trace(GraphBuilder& g, const std::string& p, const std::string& x) const {
  std::string y = trace_relu(g, p + "relu1", trace_bn(g, bn1, p + "bn1", trace_conv(g, conv1, p + "conv1", x)));
  y = trace_finish(g, p, trace_bn(g, bn2, p + "bn2", trace_conv(g, conv2, p + "conv2", y)));
  if (shortcut_.present()) y = trace_add(g, p + "add", y, shortcut_.trace(g, p, x));
  return trace_relu(g, p + "relu2", y);
}

BottleneckImpl::BottleneckImpl(const BlockOptions& o) {
  const int64_t out = o.planes * expansion(BlockKind::Bottleneck);
  const int64_t s1 = o.stride_on_3x3 ? 1 : o.stride, s3 = o.stride_on_3x3 ? o.stride : 1;
  const int64_t width = bottleneck_width(o.planes, o.groups, o.width_per_group);
  conv1 = register_module("conv1", conv1x1(o.in, width, s1));
  bn1 = register_module("bn1", nn::BatchNorm2d(width));
  conv2 = register_module("conv2", conv3x3(width, width, s3, o.groups));
  bn2 = register_module("bn2", nn::BatchNorm2d(width));
  conv3 = register_module("conv3", conv1x1(width, out));
  bn3 = register_module("bn3", nn::BatchNorm2d(out));
  add_attention(o, out);
  shortcut_ = Shortcut::make(*this, o.in, out, o.stride, o.shortcut, o.shortcut_scale, true, o.avg_down);
}

torch::Tensor BottleneckImpl::forward(const torch::Tensor& x) {
  torch::Tensor out = apply_bn(bn1, apply_conv(conv1, x)).relu_();
  out = apply_bn(bn2, apply_conv(conv2, out)).relu_();
  out = finish(apply_bn(bn3, apply_conv(conv3, out)));
  if (shortcut_.present()) out.add_(shortcut_(x));
  return out.relu_();
}

std::string BottleneckImpl::trace(GraphBuilder& g, const std::string& p, const std::string& x) const {
  std::string y = trace_relu(g, p + "relu1", trace_bn(g, bn1, p + "bn1", trace_conv(g, conv1, p + "conv1", x)));
  y = trace_relu(g, p + "relu2", trace_bn(g, bn2, p + "bn2", trace_conv(g, conv2, p + "conv2", y)));
  y = trace_finish(g, p, trace_bn(g, bn3, p + "bn3", trace_conv(g, conv3, p + "conv3", y)));
  if (shortcut_.present()) y = trace_add(g, p + "add", y, shortcut_.trace(g, p, x));
  return trace_relu(g, p + "relu3", y);
}

// ---- pre-activation blocks -----------------------------------------------------------------------
// A projection shortcut reads the pre-activated input (BN-ReLU of x), as in the Identity Mappings code;
// an identity shortcut (options A/B without projection) carries x itself, untouched.

PreActBasicBlockImpl::PreActBasicBlockImpl(const BlockOptions& o) {
  bn1 = register_module("bn1", nn::BatchNorm2d(o.in));
  conv1 = register_module("conv1", conv3x3(o.in, o.planes, o.stride));
  bn2 = register_module("bn2", nn::BatchNorm2d(o.planes));
  conv2 = register_module("conv2", conv3x3(o.planes, o.planes));
  add_attention(o, o.planes);
  shortcut_ = Shortcut::make(*this, o.in, o.planes, o.stride, o.shortcut, o.shortcut_scale, false, o.avg_down);
}

torch::Tensor PreActBasicBlockImpl::forward(const torch::Tensor& x) {
  torch::Tensor pre = torch::relu(apply_bn(bn1, x));
  torch::Tensor out = apply_conv(conv1, pre);
  out = finish(apply_conv(conv2, apply_bn(bn2, out).relu_()));
  if (shortcut_.present()) out = out + shortcut_(shortcut_.projects() ? pre : x);
  return out;
}

std::string PreActBasicBlockImpl::trace(GraphBuilder& g, const std::string& p, const std::string& x) const {
  const std::string pre = trace_relu(g, p + "relu1", trace_bn(g, bn1, p + "bn1", x));
  std::string y = trace_conv(g, conv1, p + "conv1", pre);
  y = trace_conv(g, conv2, p + "conv2", trace_relu(g, p + "relu2", trace_bn(g, bn2, p + "bn2", y)));
  y = trace_finish(g, p, y);
  if (shortcut_.present()) y = trace_add(g, p + "add", y, shortcut_.trace(g, p, shortcut_.projects() ? pre : x));
  return y;
}

PreActBottleneckImpl::PreActBottleneckImpl(const BlockOptions& o) {
  const int64_t out = o.planes * expansion(BlockKind::Bottleneck);
  const int64_t s1 = o.stride_on_3x3 ? 1 : o.stride, s3 = o.stride_on_3x3 ? o.stride : 1;
  bn1 = register_module("bn1", nn::BatchNorm2d(o.in));
  const int64_t width = bottleneck_width(o.planes, o.groups, o.width_per_group);
  conv1 = register_module("conv1", conv1x1(o.in, width, s1));
  bn2 = register_module("bn2", nn::BatchNorm2d(width));
  conv2 = register_module("conv2", conv3x3(width, width, s3, o.groups));
  bn3 = register_module("bn3", nn::BatchNorm2d(width));
  conv3 = register_module("conv3", conv1x1(width, out));
  add_attention(o, out);
  shortcut_ = Shortcut::make(*this, o.in, out, o.stride, o.shortcut, o.shortcut_scale, false, o.avg_down);
}

torch::Tensor PreActBottleneckImpl::forward(const torch::Tensor& x) {
  torch::Tensor pre = torch::relu(apply_bn(bn1, x));
  torch::Tensor out = apply_conv(conv1, pre);
  out = apply_conv(conv2, apply_bn(bn2, out).relu_());
  out = finish(apply_conv(conv3, apply_bn(bn3, out).relu_()));
  if (shortcut_.present()) out = out + shortcut_(shortcut_.projects() ? pre : x);
  return out;
}

std::string PreActBottleneckImpl::trace(GraphBuilder& g, const std::string& p, const std::string& x) const {
  const std::string pre = trace_relu(g, p + "relu1", trace_bn(g, bn1, p + "bn1", x));
  std::string y = trace_conv(g, conv1, p + "conv1", pre);
  y = trace_conv(g, conv2, p + "conv2", trace_relu(g, p + "relu2", trace_bn(g, bn2, p + "bn2", y)));
  y = trace_conv(g, conv3, p + "conv3", trace_relu(g, p + "relu3", trace_bn(g, bn3, p + "bn3", y)));
  y = trace_finish(g, p, y);
  if (shortcut_.present()) y = trace_add(g, p + "add", y, shortcut_.trace(g, p, shortcut_.projects() ? pre : x));
  return y;
}

std::shared_ptr<BlockImpl> make_block(BlockKind kind, bool preact, const BlockOptions& o) {
  if (kind == BlockKind::Basic) {
    // As torchvision's BasicBlock: its two 3x3 convolutions have no group or width option.
    if (o.groups != 1 || o.width_per_group != 64)
      throw invalid("basic blocks take only groups 1 and width per group 64 (a bottleneck has a grouped 3x3)");
    if (preact) return std::make_shared<PreActBasicBlockImpl>(o);
    return std::make_shared<BasicBlockImpl>(o);
  }
  if (preact) return std::make_shared<PreActBottleneckImpl>(o);
  return std::make_shared<BottleneckImpl>(o);
}

}  // namespace rt
