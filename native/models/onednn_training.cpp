#include "models/onednn_training.h"

#include "common/autograd_node.h"
#include "common/error.h"
#include "models/resnet.h"

#include "common/onednn.h"

#if RT_ONEDNN2

#include <ATen/ops/threshold_backward.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>

#include <map>
#include <unordered_map>
#include <utility>
#include <vector>

#include "device/runtime.h"

namespace rt {

namespace {

using dnnl::memory;
using md = memory::desc;
using tag = memory::format_tag;
using dt = memory::data_type;

using onednn::bytes;
using onednn::cpu;
using onednn::is_reference;

memory::dims dims_of(c10::IntArrayRef v) { return memory::dims(v.begin(), v.end()); }

// A dense tensor's layout as oneDNN sees it (NCHW, NHWC or any strides).
md strided_desc(const torch::Tensor& t) { return md(dims_of(t.sizes()), dt::f32, dims_of(t.strides())); }

dnnl::primitive_attr user_scratchpad() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

template <typename PD>
PD jit_only(PD pd, const std::string& what) {
  if (is_reference(pd)) throw invalid("oneDNN has only its reference " + what + " here (" + pd.impl_info_str() + ")");
  return pd;
}

// A convolution in the blocked layout, or, where oneDNN's JIT kernels do not take it there (AVX2's backward on 2x2
// maps), in the layouts oneDNN picks for it, its activations reordered in and out (small maps: little to move).
template <typename PD, typename Make>
PD jit_conv(const md& src, const md& dst, Make make, const std::string& what) {
  PD pd = make(src, dst);
  if (!is_reference(pd)) return pd;
  const md any_src(src.dims(), dt::f32, tag::any), any_dst(dst.dims(), dt::f32, tag::any);
  return jit_only(make(any_src, any_dst), what);
}

}  // namespace

// The program for one input shape: the steps of the trace, their primitives and the layout of every value.
struct OneDnnTraining::Plan {
  enum class Kind { Conv, BatchNorm, Relu, Add, MaxPool, AvgPool, Subsample, PadChannels, Scale, GlobalPool };

  struct Value {
    int64_t c = 0, h = 0, w = 0;
    md desc;  // blocked, except the network's input
  };

  struct Step {
    Kind kind;
    std::vector<int> in;
    int out = -1;
    bool relu = false;  // BatchNorm or Add followed by its ReLU, fused
    // Conv
    torch::Tensor weight;
    int weight_edge = -1;
    bool data_grad = true;  // false for a convolution of the network's input
    dnnl::convolution_forward::primitive_desc conv_pd;
    dnnl::convolution_backward_data::primitive_desc conv_bwd_data_pd;
    dnnl::convolution_backward_weights::primitive_desc conv_bwd_weights_pd;
    dnnl::primitive conv, conv_bwd_data, conv_bwd_weights;
    md user_weight;                        // the parameter's own layout (OIHW, or OHWI for channels_last)
    torch::Tensor fwd_weight, bwd_weight;  // the weight reordered for each direction (aliases when one layout)
    dnnl::reorder to_fwd_weight, to_bwd_weight, to_user_grad;
    // BatchNorm
    torch::Tensor gamma, beta, running_mean, running_var, batches_tracked;
    int gamma_edge = -1, beta_edge = -1;
    double eps = 0, momentum = 0;
    dnnl::batch_normalization_forward::primitive_desc bn_pd;
    dnnl::batch_normalization_backward::primitive_desc bn_bwd_pd;
    dnnl::primitive bn, bn_bwd;
    md channels;  // BatchNorm's scale, shift and their gradients: C floats
    // Add, MaxPool, AvgPool
    dnnl::binary::primitive_desc binary_pd;
    dnnl::primitive binary;
    dnnl::pooling_forward::primitive_desc pool_pd;
    dnnl::pooling_backward::primitive_desc pool_bwd_pd;
    dnnl::primitive pool, pool_bwd;
    // Subsample (stride), PadChannels (channels appended), Scale
    int64_t stride = 1;
    double scale = 1;
  };

  // What one forward keeps for its backward.
  struct Tape {
    std::shared_ptr<Plan> plan;
    std::vector<torch::Tensor> values;
    std::vector<torch::Tensor> mean, variance, workspace;  // per step, where the step has them
  };

  int64_t n = 0, b = 8;
  std::vector<Value> values;
  std::vector<Step> steps;
  int input = 0, pooled = -1;
  std::vector<torch::Tensor> edges;  // the trainable parameters, in the autograd node's edge order
  torch::Tensor fc_weight, fc_bias;
  torch::Tensor scratch;
  dnnl::stream stream{cpu()};

  torch::Tensor blocked(const Value& v) const { return torch::empty({n, v.c / b, v.h, v.w, b}, torch::kFloat32); }
  torch::Tensor zeros_like_value(const Value& v) const { return torch::zeros({n, v.c / b, v.h, v.w, b}); }

  memory mem(const md& d, const torch::Tensor& t) const { return memory(d, cpu(), t.data_ptr()); }
  memory mem(const Value& v, const torch::Tensor& t) const { return mem(v.desc, t); }

  // `t` (laid out as `from`) in the layout `to`: itself where they agree, else reordered into a new buffer.
  torch::Tensor as(const torch::Tensor& t, const md& from, const md& to) {
    if (from == to) return t;
    torch::Tensor out = bytes(to.get_size());
    memory a = mem(from, t), b = mem(to, out);
    dnnl::reorder(a, b).execute(stream, a, b);
    return out;
  }
  // A value's tensor written by a primitive whose output is laid out as `produced`.
  torch::Tensor value_from(const Value& v, const torch::Tensor& t, const md& produced) {
    if (produced == v.desc) return t;
    torch::Tensor out = blocked(v);
    memory a = mem(produced, t), b = mem(v, out);
    dnnl::reorder(a, b).execute(stream, a, b);
    return out;
  }
  // An output buffer for a primitive writing `produced`: the value's own where the layouts agree.
  torch::Tensor output_for(const Value& v, const md& produced) {
    return produced == v.desc ? blocked(v) : bytes(produced.get_size());
  }

  void exec(dnnl::primitive& p, const dnnl::primitive_desc_base& pd, std::unordered_map<int, memory> args) {
    const md scratch_desc = pd.scratchpad_desc();
    if (scratch_desc.get_size() > 0) args.insert({DNNL_ARG_SCRATCHPAD, mem(scratch_desc, scratch)});
    p.execute(stream, args);
  }

  static void reserve_scratch(const dnnl::primitive_desc_base& pd, size_t& most) {
    most = std::max(most, pd.scratchpad_desc().get_size());
  }

  static Plan build(ResNetImpl& net, const torch::Tensor& x, int64_t block);
  torch::Tensor forward(const torch::Tensor& x, Tape& tape);
  std::vector<torch::Tensor> backward(Tape& tape, const torch::Tensor& grad_pooled, const std::vector<bool>& needed);
};

namespace {

const double* find_float(const GraphNode& n, const char* key) {
  auto it = n.float_attrs.find(key);
  return it == n.float_attrs.end() ? nullptr : &it->second;
}

}  // namespace

OneDnnTraining::Plan OneDnnTraining::Plan::build(ResNetImpl& net, const torch::Tensor& x, int64_t block) {
  Plan plan;
  plan.n = x.size(0);
  plan.b = block;
  const GraphBuilder graph = net.trace(x.size(2), x.size(3));
  std::map<std::string, torch::Tensor> state;
  for (const auto& p : net.named_parameters()) state[p.key()] = p.value();
  for (const auto& t : net.named_buffers()) state[t.key()] = t.value();
  const auto constant = [&](const std::string& name) -> torch::Tensor {
    for (const auto& c : graph.constants())
      if (c.first == name) return c.second;
    throw invalid("oneDNN training: the trace has no constant " + name);
  };
  std::map<std::string, int> readers;
  for (const auto& node : graph.nodes())
    for (const auto& in : node.inputs) ++readers[in];
  std::map<std::string, int> ids;
  const auto add_value = [&](const std::string& name, const Shape& s) {
    Value v;
    v.c = s[1];
    v.h = s[2];
    v.w = s[3];
    if (v.c % block != 0)
      throw invalid("oneDNN training: " + std::to_string(v.c) + " channels are not a multiple of " +
                    std::to_string(block));
    v.desc = md({plan.n, v.c, v.h, v.w}, dt::f32, block == 16 ? tag::nChw16c : tag::nChw8c);
    plan.values.push_back(v);
    ids[name] = static_cast<int>(plan.values.size()) - 1;
    return ids[name];
  };
  {
    Value in;
    in.c = x.size(1);
    in.h = x.size(2);
    in.w = x.size(3);
    in.desc = strided_desc(x);
    plan.values.push_back(in);
    ids[graph.input()] = plan.input = 0;
  }
  const auto edge = [&](const torch::Tensor& p) {
    plan.edges.push_back(p);
    return static_cast<int>(plan.edges.size()) - 1;
  };
  size_t most_scratch = 0;
  const auto& nodes = graph.nodes();
  for (size_t i = 0; i < nodes.size(); ++i) {
    const GraphNode& node = nodes[i];
    Shape shape = node.output_shape;
    if (node.op == "Flatten") {  // [N, C, 1, 1] -> [N, C]: the pooled features themselves
      ids[node.output] = ids.at(node.inputs[0]);
      continue;
    }
    if (node.op == "Gemm") {
      if (i + 1 != nodes.size() || plan.pooled < 0) throw invalid("oneDNN training: fc is not the last operation");
      plan.fc_weight = state.at(node.inputs[1]);
      plan.fc_bias = state.at(node.inputs[2]);
      continue;
    }
    Step s;
    for (const auto& in : node.inputs)
      if (ids.count(in)) s.in.push_back(ids.at(in));
    const Value src = plan.values.at(s.in.at(0));
    // A ReLU that is the only reader of this BatchNorm's or Add's output runs inside it.
    const bool fuse_relu = i + 1 < nodes.size() && nodes[i + 1].op == "Relu" && nodes[i + 1].inputs[0] == node.output &&
                           readers[node.output] == 1;
    if (node.op == "GlobalAveragePool") {
      s.kind = Kind::GlobalPool;
      Value pooled;
      pooled.c = src.c;
      pooled.h = pooled.w = 1;
      plan.values.push_back(pooled);
      s.out = ids[node.output] = plan.pooled = static_cast<int>(plan.values.size()) - 1;
      plan.steps.push_back(std::move(s));
      continue;
    }
    s.out = add_value(node.output, shape);
    const Value& dst = plan.values.at(s.out);
    if (node.op == "Conv") {
      s.kind = Kind::Conv;
      s.weight = state.at(node.inputs[1]);
      if (node.inputs.size() > 2) throw invalid("oneDNN training: a convolution with a bias");
      s.weight_edge = edge(s.weight);
      s.data_grad = s.in[0] != plan.input;
      const int64_t stride = node.int_attrs.at("strides")[0], pad = node.int_attrs.at("pads")[0];
      const memory::dims strides{stride, stride}, padding{pad, pad};
      const md any_weight(dims_of(s.weight.sizes()), dt::f32, tag::any);
      const auto attr = user_scratchpad();
      const auto alg = dnnl::algorithm::convolution_direct;
      s.conv_pd = jit_conv<dnnl::convolution_forward::primitive_desc>(
          src.desc, dst.desc,
          [&](const md& a, const md& b) {
            return dnnl::convolution_forward::primitive_desc(
                {dnnl::prop_kind::forward_training, alg, a, any_weight, b, strides, padding, padding}, attr, cpu());
          },
          "convolution for " + node.name);
      s.conv = dnnl::convolution_forward(s.conv_pd);
      s.conv_bwd_weights_pd = jit_conv<dnnl::convolution_backward_weights::primitive_desc>(
          src.desc, dst.desc,
          [&](const md& a, const md& b) {
            return dnnl::convolution_backward_weights::primitive_desc(
                {alg, a, any_weight, b, strides, padding, padding}, attr, cpu(), s.conv_pd);
          },
          "convolution backward for " + node.name);
      s.conv_bwd_weights = dnnl::convolution_backward_weights(s.conv_bwd_weights_pd);
      s.user_weight = strided_desc(s.weight);
      s.fwd_weight = bytes(s.conv_pd.weights_desc().get_size());
      s.to_fwd_weight =
          dnnl::reorder(dnnl::reorder::primitive_desc(cpu(), s.user_weight, cpu(), s.conv_pd.weights_desc()));
      s.to_user_grad = dnnl::reorder(
          dnnl::reorder::primitive_desc(cpu(), s.conv_bwd_weights_pd.diff_weights_desc(), cpu(), s.user_weight));
      reserve_scratch(s.conv_pd, most_scratch);
      reserve_scratch(s.conv_bwd_weights_pd, most_scratch);
      if (s.data_grad) {
        s.conv_bwd_data_pd = jit_conv<dnnl::convolution_backward_data::primitive_desc>(
            src.desc, dst.desc,
            [&](const md& a, const md& b) {
              return dnnl::convolution_backward_data::primitive_desc({alg, a, any_weight, b, strides, padding, padding},
                                                                     attr, cpu(), s.conv_pd);
            },
            "convolution backward for " + node.name);
        s.conv_bwd_data = dnnl::convolution_backward_data(s.conv_bwd_data_pd);
        if (s.conv_bwd_data_pd.weights_desc() == s.conv_pd.weights_desc()) {
          s.bwd_weight = s.fwd_weight;
        } else {
          s.bwd_weight = bytes(s.conv_bwd_data_pd.weights_desc().get_size());
          s.to_bwd_weight = dnnl::reorder(
              dnnl::reorder::primitive_desc(cpu(), s.user_weight, cpu(), s.conv_bwd_data_pd.weights_desc()));
        }
        reserve_scratch(s.conv_bwd_data_pd, most_scratch);
      }
    } else if (node.op == "BatchNormalization") {
      s.kind = Kind::BatchNorm;
      const std::string prefix = node.name + ".";
      s.gamma = state.at(node.inputs[1]);
      s.beta = state.at(node.inputs[2]);
      s.running_mean = state.at(node.inputs[3]);
      s.running_var = state.at(node.inputs[4]);
      s.batches_tracked = state.at(prefix + "num_batches_tracked");
      s.gamma_edge = edge(s.gamma);
      s.beta_edge = edge(s.beta);
      s.eps = *find_float(node, "epsilon");
      s.momentum = 1.0 - *find_float(node, "momentum");  // ONNX's momentum is PyTorch's 1 - momentum
      s.relu = fuse_relu;
      s.channels = md({dst.c}, dt::f32, tag::a);
      auto flags = dnnl::normalization_flags::use_scale | dnnl::normalization_flags::use_shift;
      if (s.relu) flags = flags | dnnl::normalization_flags::fuse_norm_relu;
      const auto attr = user_scratchpad();
      s.bn_pd =
          jit_only(dnnl::batch_normalization_forward::primitive_desc(
                       {dnnl::prop_kind::forward_training, src.desc, static_cast<float>(s.eps), flags}, attr, cpu()),
                   "batch normalization for " + node.name);
      s.bn = dnnl::batch_normalization_forward(s.bn_pd);
      s.bn_bwd_pd = jit_only(
          dnnl::batch_normalization_backward::primitive_desc(
              {dnnl::prop_kind::backward, dst.desc, src.desc, static_cast<float>(s.eps), flags}, attr, cpu(), s.bn_pd),
          "batch normalization backward for " + node.name);
      s.bn_bwd = dnnl::batch_normalization_backward(s.bn_bwd_pd);
      reserve_scratch(s.bn_pd, most_scratch);
      reserve_scratch(s.bn_bwd_pd, most_scratch);
    } else if (node.op == "Relu") {
      s.kind = Kind::Relu;
    } else if (node.op == "Add") {
      s.kind = Kind::Add;
      if (s.in.size() != 2) throw invalid("oneDNN training: an Add of " + std::to_string(s.in.size()) + " values");
      s.relu = fuse_relu;
      dnnl::primitive_attr attr = user_scratchpad();
      if (s.relu) {
        dnnl::post_ops ops;
        ops.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
        attr.set_post_ops(ops);
      }
      s.binary_pd = dnnl::binary::primitive_desc(
          {dnnl::algorithm::binary_add, plan.values.at(s.in[0]).desc, plan.values.at(s.in[1]).desc, dst.desc}, attr,
          cpu());
      s.binary = dnnl::binary(s.binary_pd);
      reserve_scratch(s.binary_pd, most_scratch);
    } else if (node.op == "MaxPool" || node.op == "AveragePool") {
      // Max pooling (the ImageNet stem) or ResNet-D's average-pool shortcut (ceil mode, padding not counted).
      const bool max = node.op == "MaxPool";
      s.kind = max ? Kind::MaxPool : Kind::AvgPool;
      const int64_t k = node.int_attrs.at("kernel_shape")[0], st = node.int_attrs.at("strides")[0],
                    p = node.int_attrs.at("pads")[0];
      if (!max && (node.int_attrs.count("count_include_pad") == 0 || node.int_attrs.at("count_include_pad")[0] != 0))
        throw invalid("oneDNN training: an average pool that counts its padding");
      const auto alg = max ? dnnl::algorithm::pooling_max : dnnl::algorithm::pooling_avg_exclude_padding;
      // The right padding that gives the output size the trace computed (PyTorch's floor, or ceil mode's extra
      // window).
      const int64_t pad_r_h = (dst.h - 1) * st + k - src.h - p, pad_r_w = (dst.w - 1) * st + k - src.w - p;
      const auto attr = user_scratchpad();
      s.pool_pd = jit_only(dnnl::pooling_forward::primitive_desc({dnnl::prop_kind::forward_training,
                                                                  alg,
                                                                  src.desc,
                                                                  dst.desc,
                                                                  {st, st},
                                                                  {k, k},
                                                                  {p, p},
                                                                  {pad_r_h, pad_r_w}},
                                                                 attr, cpu()),
                           "pooling for " + node.name);
      s.pool = dnnl::pooling_forward(s.pool_pd);
      s.pool_bwd_pd =
          jit_only(dnnl::pooling_backward::primitive_desc(
                       {alg, src.desc, dst.desc, {st, st}, {k, k}, {p, p}, {pad_r_h, pad_r_w}}, attr, cpu(), s.pool_pd),
                   "pooling backward for " + node.name);
      s.pool_bwd = dnnl::pooling_backward(s.pool_bwd_pd);
      reserve_scratch(s.pool_pd, most_scratch);
      reserve_scratch(s.pool_bwd_pd, most_scratch);
    } else if (node.op == "Slice") {
      s.kind = Kind::Subsample;
      const auto steps = constant(node.name + ".steps");
      s.stride = steps[0].item<int64_t>();
      if (steps[1].item<int64_t>() != s.stride) throw invalid("oneDNN training: unequal subsampling strides");
    } else if (node.op == "Pad") {
      s.kind = Kind::PadChannels;
      const auto pads = constant(node.name + ".pads");
      if (pads[1].item<int64_t>() != 0 || dst.h != src.h || dst.w != src.w)
        throw invalid("oneDNN training: a Pad other than channels appended");
    } else if (node.op == "Mul") {
      s.kind = Kind::Scale;
      s.scale = constant(node.inputs[1]).item<double>();
    } else {
      throw invalid("oneDNN training: no step for " + node.op);
    }
    if (fuse_relu) ids[nodes[++i].output] = s.out;  // the ReLU's output is this step's
    plan.steps.push_back(std::move(s));
  }
  if (plan.pooled < 0 || !plan.fc_weight.defined()) throw invalid("oneDNN training: no global pool and fc");
  plan.scratch = bytes(most_scratch);
  return plan;
}

torch::Tensor OneDnnTraining::Plan::forward(const torch::Tensor& x, Tape& tape) {
  torch::NoGradGuard no_grad;
  tape.values.assign(values.size(), torch::Tensor());
  tape.mean.assign(steps.size(), torch::Tensor());
  tape.variance.assign(steps.size(), torch::Tensor());
  tape.workspace.assign(steps.size(), torch::Tensor());
  tape.values[input] = x;
  const auto view5 = [&](int v) { return tape.values[v]; };  // blocked values are N × C/b × H × W × b tensors
  for (size_t i = 0; i < steps.size(); ++i) {
    Step& s = steps[i];
    const Value& out = values[s.out];
    torch::Tensor src = tape.values[s.in[0]];
    torch::Tensor dst;
    switch (s.kind) {
      case Kind::Conv: {
        // The weights changed at the last step: into each direction's layout once per forward.
        memory user = mem(s.user_weight, s.weight), fwd = mem(s.conv_pd.weights_desc(), s.fwd_weight);
        s.to_fwd_weight.execute(stream, user, fwd);
        if (s.to_bwd_weight) {
          memory bwd = mem(s.conv_bwd_data_pd.weights_desc(), s.bwd_weight);
          s.to_bwd_weight.execute(stream, user, bwd);
        }
        const torch::Tensor produced = output_for(out, s.conv_pd.dst_desc());
        exec(s.conv, s.conv_pd,
             {{DNNL_ARG_SRC, mem(s.conv_pd.src_desc(), as(src, values[s.in[0]].desc, s.conv_pd.src_desc()))},
              {DNNL_ARG_WEIGHTS, mem(s.conv_pd.weights_desc(), s.fwd_weight)},
              {DNNL_ARG_DST, mem(s.conv_pd.dst_desc(), produced)}});
        dst = value_from(out, produced, s.conv_pd.dst_desc());
        break;
      }
      case Kind::BatchNorm: {
        dst = blocked(out);
        auto mean = torch::empty({out.c}), var = torch::empty({out.c});
        std::unordered_map<int, memory> args{
            {DNNL_ARG_SRC, mem(values[s.in[0]], src)},       {DNNL_ARG_DST, mem(out, dst)},
            {DNNL_ARG_SCALE, mem(s.channels, s.gamma)},      {DNNL_ARG_SHIFT, mem(s.channels, s.beta)},
            {DNNL_ARG_MEAN, mem(s.bn_pd.mean_desc(), mean)}, {DNNL_ARG_VARIANCE, mem(s.bn_pd.variance_desc(), var)}};
        if (s.relu) {
          tape.workspace[i] = bytes(s.bn_pd.workspace_desc().get_size());
          args.insert({DNNL_ARG_WORKSPACE, mem(s.bn_pd.workspace_desc(), tape.workspace[i])});
        }
        exec(s.bn, s.bn_pd, std::move(args));
        // PyTorch's running statistics: the unbiased variance, momentum-weighted.
        const double count = static_cast<double>(n * out.h * out.w);
        s.running_mean.mul_(1 - s.momentum).add_(mean, s.momentum);
        s.running_var.mul_(1 - s.momentum).add_(var * (count / std::max(1.0, count - 1)), s.momentum);
        s.batches_tracked.add_(1);
        tape.mean[i] = mean;
        tape.variance[i] = var;
        break;
      }
      case Kind::Relu:
        dst = src.clamp_min(0);
        break;
      case Kind::Add:
        dst = blocked(out);
        exec(s.binary, s.binary_pd,
             {{DNNL_ARG_SRC_0, mem(values[s.in[0]], src)},
              {DNNL_ARG_SRC_1, mem(values[s.in[1]], tape.values[s.in[1]])},
              {DNNL_ARG_DST, mem(out, dst)}});
        break;
      case Kind::AvgPool:
        dst = blocked(out);
        exec(s.pool, s.pool_pd, {{DNNL_ARG_SRC, mem(values[s.in[0]], src)}, {DNNL_ARG_DST, mem(out, dst)}});
        break;
      case Kind::MaxPool: {
        dst = blocked(out);
        tape.workspace[i] = bytes(s.pool_pd.workspace_desc().get_size());
        exec(s.pool, s.pool_pd,
             {{DNNL_ARG_SRC, mem(values[s.in[0]], src)},
              {DNNL_ARG_DST, mem(out, dst)},
              {DNNL_ARG_WORKSPACE, mem(s.pool_pd.workspace_desc(), tape.workspace[i])}});
        break;
      }
      case Kind::Subsample:
        dst = view5(s.in[0]).slice(2, 0, c10::nullopt, s.stride).slice(3, 0, c10::nullopt, s.stride).contiguous();
        break;
      case Kind::PadChannels:
        dst = zeros_like_value(out);
        dst.narrow(1, 0, src.size(1)).copy_(src);
        break;
      case Kind::Scale:
        dst = src * s.scale;
        break;
      case Kind::GlobalPool:
        // Channel c of a blocked value sits at [c / b][...][c % b]: the mean over H and W, then [N, C].
        dst = src.mean({2, 3}).reshape({n, out.c});
        break;
    }
    tape.values[s.out] = dst;
  }
  return tape.values[pooled];
}

std::vector<torch::Tensor> OneDnnTraining::Plan::backward(Tape& tape, const torch::Tensor& grad_pooled,
                                                          const std::vector<bool>& needed) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> grads(values.size()), out(edges.size());
  const auto accumulate = [&](int v, torch::Tensor g) { grads[v] = grads[v].defined() ? grads[v] + g : std::move(g); };
  accumulate(pooled, grad_pooled.contiguous());
  for (size_t k = steps.size(); k-- > 0;) {
    Step& s = steps[k];
    torch::Tensor g = grads[s.out];
    if (!g.defined()) continue;
    grads[s.out] = torch::Tensor();  // its last reader is done: free it
    const Value& in = values[s.in[0]];
    const Value& o = values[s.out];
    switch (s.kind) {
      case Kind::GlobalPool:
        accumulate(s.in[0],
                   g.view({n, in.c / b, 1, 1, b}).expand({n, in.c / b, in.h, in.w, b}).div(in.h * in.w).contiguous());
        break;
      case Kind::Scale:
        accumulate(s.in[0], g * s.scale);
        break;
      case Kind::PadChannels:
        accumulate(s.in[0], g.narrow(1, 0, in.c / b).contiguous());
        break;
      case Kind::Subsample: {
        auto gi = zeros_like_value(in);
        gi.slice(2, 0, c10::nullopt, s.stride).slice(3, 0, c10::nullopt, s.stride).copy_(g);
        accumulate(s.in[0], gi);
        break;
      }
      case Kind::Relu:
        accumulate(s.in[0], at::threshold_backward(g, tape.values[s.out], 0));
        break;
      case Kind::Add: {
        torch::Tensor gi = s.relu ? at::threshold_backward(g, tape.values[s.out], 0) : g;
        accumulate(s.in[0], gi);
        accumulate(s.in[1], gi);
        break;
      }
      case Kind::MaxPool:
      case Kind::AvgPool: {
        auto gi = blocked(in);
        std::unordered_map<int, memory> args{{DNNL_ARG_DIFF_DST, mem(o, g.contiguous())},
                                             {DNNL_ARG_DIFF_SRC, mem(in, gi)}};
        if (s.kind == Kind::MaxPool)
          args.emplace(DNNL_ARG_WORKSPACE, mem(s.pool_pd.workspace_desc(), tape.workspace[k]));
        exec(s.pool_bwd, s.pool_bwd_pd, args);
        accumulate(s.in[0], gi);
        break;
      }
      case Kind::BatchNorm: {
        auto gi = blocked(in);
        auto dgamma = torch::empty({o.c}), dbeta = torch::empty({o.c});
        const torch::Tensor gc = g.contiguous();
        std::unordered_map<int, memory> args{{DNNL_ARG_SRC, mem(in, tape.values[s.in[0]])},
                                             {DNNL_ARG_MEAN, mem(s.bn_pd.mean_desc(), tape.mean[k])},
                                             {DNNL_ARG_VARIANCE, mem(s.bn_pd.variance_desc(), tape.variance[k])},
                                             {DNNL_ARG_DIFF_DST, mem(o, gc)},
                                             {DNNL_ARG_SCALE, mem(s.channels, s.gamma)},
                                             {DNNL_ARG_SHIFT, mem(s.channels, s.beta)},
                                             {DNNL_ARG_DIFF_SRC, mem(in, gi)},
                                             {DNNL_ARG_DIFF_SCALE, mem(s.channels, dgamma)},
                                             {DNNL_ARG_DIFF_SHIFT, mem(s.channels, dbeta)}};
        if (s.relu) args.insert({DNNL_ARG_WORKSPACE, mem(s.bn_pd.workspace_desc(), tape.workspace[k])});
        exec(s.bn_bwd, s.bn_bwd_pd, std::move(args));
        if (needed[s.gamma_edge]) out[s.gamma_edge] = dgamma;
        if (needed[s.beta_edge]) out[s.beta_edge] = dbeta;
        accumulate(s.in[0], gi);
        break;
      }
      case Kind::Conv: {
        const torch::Tensor gc = g.contiguous();
        if (needed[s.weight_edge]) {
          auto dw = bytes(s.conv_bwd_weights_pd.diff_weights_desc().get_size());
          const auto& pd = s.conv_bwd_weights_pd;
          exec(s.conv_bwd_weights, pd,
               {{DNNL_ARG_SRC, mem(pd.src_desc(), as(tape.values[s.in[0]], in.desc, pd.src_desc()))},
                {DNNL_ARG_DIFF_DST, mem(pd.diff_dst_desc(), as(gc, o.desc, pd.diff_dst_desc()))},
                {DNNL_ARG_DIFF_WEIGHTS, mem(s.conv_bwd_weights_pd.diff_weights_desc(), dw)}});
          auto grad = torch::empty_like(s.weight);  // the parameter's own layout (contiguous or channels_last)
          memory from = mem(s.conv_bwd_weights_pd.diff_weights_desc(), dw), to = mem(s.user_weight, grad);
          s.to_user_grad.execute(stream, from, to);
          out[s.weight_edge] = grad;
        }
        if (s.data_grad) {
          const auto& pd = s.conv_bwd_data_pd;
          const torch::Tensor gi = output_for(in, pd.diff_src_desc());
          exec(s.conv_bwd_data, pd,
               {{DNNL_ARG_DIFF_DST, mem(pd.diff_dst_desc(), as(gc, o.desc, pd.diff_dst_desc()))},
                {DNNL_ARG_WEIGHTS, mem(pd.weights_desc(), s.bwd_weight)},
                {DNNL_ARG_DIFF_SRC, mem(pd.diff_src_desc(), gi)}});
          accumulate(s.in[0], value_from(in, gi, pd.diff_src_desc()));
        }
        break;
      }
    }
    tape.values[s.out] = torch::Tensor();
  }
  stream.wait();
  return out;
}

namespace {

// The autograd node of the body: its edges are the plan's parameters, in order.
struct OneDnnBackward : torch::autograd::Node {
  explicit OneDnnBackward(std::shared_ptr<OneDnnTraining::Plan::Tape> tape) : tape_(std::move(tape)) {}
  torch::autograd::variable_list apply(torch::autograd::variable_list&& grads) override {
    std::vector<bool> needed(num_outputs());
    for (size_t i = 0; i < needed.size(); ++i) needed[i] = should_compute_output(i);
    auto out = tape_->plan->backward(*tape_, grads[0], needed);
    tape_.reset();  // the activations go as soon as the backward is done
    return out;
  }
  std::string name() const override { return "OneDnnTrainingBackward"; }
  std::shared_ptr<OneDnnTraining::Plan::Tape> tape_;
};

}  // namespace

std::string OneDnnTraining::unsupported(const ResNetImpl& net) {
  if (const std::string why = built(); !why.empty()) return why;
  if (!onednn_enabled()) return "oneDNN is off in this process";
  if (net.dtype() != torch::kFloat32) return "the model is not float32";
  for (const auto& p : net.parameters())
    if (!p.device().is_cpu()) return "the model is not on the CPU";
  const NetSpec& spec = net.spec();
  if (spec.groups != 1) return "grouped convolutions (groups > 1) are not on this path";
  if (spec.squeeze_excite) return "squeeze-and-excitation is not on this path";
  if (spec.drop_path > 0.0) return "stochastic depth (dropPath) is not on this path";
  if (spec.deep_stem && spec.stem_width % block() != 0)
    return "the deep stem's width is not a multiple of " + std::to_string(block()) + " channels";
  const int64_t b = block();
  for (int64_t w : spec.widths) {
    const int64_t inner =
        spec.block == BlockKind::Bottleneck ? bottleneck_width(w, spec.groups, spec.width_per_group) : w;
    if (w % b != 0 || inner % b != 0) return "a width is not a multiple of " + std::to_string(b) + " channels";
  }
  return "";
}

std::string OneDnnTraining::built() {
  // The headers this was compiled with must be the library's: the same major version (find-libtorch.js checked the
  // files; this checks the process).
  const auto* v = dnnl_version();
  if (v->major != DNNL_VERSION_MAJOR)
    return "oneDNN " + std::to_string(v->major) + ".x runs, the headers were " + std::to_string(DNNL_VERSION_MAJOR) +
           ".x";
  return "";
}

std::string OneDnnTraining::version() {
  const auto* v = dnnl_version();
  return std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
}

std::string OneDnnTraining::isa() { return onednn_isa_name(static_cast<unsigned>(dnnl::get_effective_cpu_isa())); }

int64_t OneDnnTraining::block() {
  const auto isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
  const auto avx512 = static_cast<unsigned>(dnnl::cpu_isa::avx512_core);
  return (isa & avx512) == avx512 ? 16 : 8;
}

OneDnnTraining::OneDnnTraining(ResNetImpl& net) : net_(net) {}
OneDnnTraining::~OneDnnTraining() = default;

namespace {
// The batch as the first convolution takes it: NCHW (oneDNN's JIT kernels take a plain NCHW input into a blocked
// output, not an NHWC one).
torch::Tensor first_input(const torch::Tensor& x) { return x.contiguous(); }
}  // namespace

void OneDnnTraining::prepare(const torch::Tensor& x) {
  net_.check_input(x);
  const torch::Tensor input = first_input(x);
  if (!plan_ || plan_->n != input.size(0) || !(plan_->values[0].desc == strided_desc(input)))
    plan_ = std::make_shared<Plan>(Plan::build(net_, input, block()));
}

torch::Tensor OneDnnTraining::forward(const torch::Tensor& x) {
  prepare(x);
  auto tape = std::make_shared<Plan::Tape>();
  tape->plan = plan_;
  torch::Tensor pooled = plan_->forward(first_input(x), *tape);
  tape->values[plan_->pooled] = torch::Tensor();  // its backward needs no output; kept, it would keep the node alive
  auto node = make_autograd_node<OneDnnBackward>(tape);
  node->set_next_edges(torch::autograd::collect_next_edges(at::ArrayRef<torch::Tensor>(plan_->edges)));
  torch::autograd::set_history(pooled, node);
  return torch::linear(pooled, plan_->fc_weight, plan_->fc_bias);
}

}  // namespace rt

#else  // built without oneDNN's 2.x headers: libtorch's own path trains

namespace rt {

std::string OneDnnTraining::built() { return "this build has no oneDNN 2.x headers (Debian's libdnnl-dev)"; }
std::string OneDnnTraining::version() { return ""; }
std::string OneDnnTraining::isa() { return ""; }
std::string OneDnnTraining::unsupported(const ResNetImpl&) { return built(); }
int64_t OneDnnTraining::block() { return 0; }
OneDnnTraining::OneDnnTraining(ResNetImpl& net) : net_(net) {}
OneDnnTraining::~OneDnnTraining() = default;
void OneDnnTraining::prepare(const torch::Tensor&) { throw invalid("oneDNN training is not built"); }
torch::Tensor OneDnnTraining::forward(const torch::Tensor&) { throw invalid("oneDNN training is not built"); }

}  // namespace rt

#endif
