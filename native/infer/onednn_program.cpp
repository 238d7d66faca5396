#include "infer/onednn_program.h"

#include "common/error.h"
#include "infer/fused.h"

#include "common/onednn.h"

#if RT_ONEDNN2

#include <algorithm>
#include <array>
#include <chrono>
#include <map>
#include <mutex>
#include <unordered_map>
#include <utility>

#include "device/runtime.h"
#include "models/onednn_training.h"

namespace rt {

namespace {

using dnnl::memory;
using md = memory::desc;
using tag = memory::format_tag;
using dt = memory::data_type;
using Kind = FusedOp::Kind;

using onednn::bytes;
using onednn::cpu;
using onednn::is_reference;

bool is_int8(dt t) { return t == dt::s8 || t == dt::u8; }

// `d` with another data type: the same dims, layout and padding (activations carry no extra flags).
md with_type(const md& d, dt t) {
  if (d.data_type() == t) return d;
  dnnl_memory_desc_t raw = d.data;
  raw.data_type = static_cast<dnnl_data_type_t>(t);
  return md(raw);
}

// A reorder multiplying by `factor` (int8's rescaling: the source's scale over the destination's).
dnnl::reorder scaled_reorder(const memory& from, const memory& to, float factor) {
  dnnl::primitive_attr attr;
  if (factor != 1.f) attr.set_output_scales(0, {factor});
  return dnnl::reorder(dnnl::reorder::primitive_desc(from, to, attr));
}

// One step of the program: an op of the folded net, with what is fused into it.
struct Step {
  const FusedOp* op = nullptr;
  int in0 = -1, in1 = -1, out = -1;
  bool relu = false, sigmoid = false;
  bool sum = false;  // a convolution that adds `in1` (the residual's shortcut) to its output
  bool moved = false;
};

}  // namespace

// The primitives for one input shape.
struct Plan {
  struct Exec {
    dnnl::primitive prim;
    md src, src1, dst, weights;
    md sum;  // a sum's shortcut as the convolution reads it: dst's layout, the shortcut's type
    float src_scale = 1.f, src1_scale = 1.f, sum_scale = 1.f;  // int8: the scales those hold (float32: 1)
    std::string impl;                                          // oneDNN's implementation ("jit:avx512_core")
    bool swap = false;             // Mul: the gate (N×C×1×1) came first; the map is the first operand
    torch::Tensor weight;          // the convolution's weight in `weights`' layout
    torch::Tensor mean, variance;  // Affine: 0 and 1
  };
  // One primitive with its arguments bound to the plan's buffers (the input's rebound per call).
  struct Instr {
    dnnl::primitive prim;
    std::unordered_map<int, memory> args;
    int zero = -1;      // a buffer to clear first (option A's appended channels)
    std::string label;  // for profile(): the op, what is fused into it, oneDNN's implementation
  };
  int64_t n = 0;
  int threads = 0;        // OpenMP threads it was made for and runs on (0: the calling thread's count)
  bool measured = false;  // its thread count chosen (OneDnnProgram::Impl::plan)
  std::vector<md> desc;   // per value, as its producer writes it
  std::vector<std::array<int64_t, 3>> dims;
  std::vector<Exec> execs;  // per step
  size_t scratch = 0;
  // Made once: the activations' buffers (reused as values die), the program over them.
  std::vector<torch::Tensor> buffers;
  torch::Tensor scratchpad, pooled;  // pooled: the features, N×C, for the classifier
  // The classifier: an inner product on the pooled features into `logits`.
  dnnl::primitive fc;
  md fc_weights;
  std::string fc_label;
  torch::Tensor fc_weight, fc_bias, logits;
  std::vector<Instr> program;
  std::vector<memory> input;  // memories of the caller's input, rebound per call

  // `scale`: per value, the scale of its int8 content (1 where it is float).
  // One run on `input` (its shape's), on the plan's threads; `each` after every primitive, with its index.
  template <typename Each>
  void run(const torch::Tensor& input, Each each);
  void bind(const std::vector<Step>& steps, const std::vector<int>& last_use, int pooled_value,
            const std::vector<float>& scale, const std::vector<torch::Tensor>& biases);
};

template <typename Each>
void Plan::run(const torch::Tensor& input, Each each) {
  CallingThreadThreads on(threads);
  for (memory& m : this->input) m.set_data_handle(input.data_ptr());
  dnnl::stream stream(cpu());
  for (size_t i = 0; i < program.size(); ++i) {
    Instr& in = program[i];
    if (in.zero >= 0) buffers[in.zero].zero_();
    in.prim.execute(stream, in.args);
    each(stream, i);
  }
  stream.wait();
}

namespace {

// Buffers for values by liveness: a value takes the smallest free buffer that holds it, else grows the largest free
// one, else a new one; sizes settle before anything is allocated.
class BufferPlan {
 public:
  int take(size_t size) {
    int best = -1;
    for (int b : free_)
      if (size_[b] >= size && (best < 0 || size_[b] < size_[best])) best = b;
    if (best < 0)
      for (int b : free_)
        if (best < 0 || size_[b] > size_[best]) best = b;
    if (best < 0) {
      size_.push_back(0);
      best = static_cast<int>(size_.size()) - 1;
    } else {
      free_.erase(std::find(free_.begin(), free_.end(), best));
    }
    size_[best] = std::max(size_[best], size);
    return best;
  }
  void give(int b) { free_.push_back(b); }
  std::vector<torch::Tensor> allocate() const {
    std::vector<torch::Tensor> out;
    for (size_t s : size_) out.push_back(bytes(s));
    return out;
  }

 private:
  std::vector<size_t> size_;
  std::vector<int> free_;
};

}  // namespace

void Plan::bind(const std::vector<Step>& steps, const std::vector<int>& last_use, int pooled_value,
                const std::vector<float>& scale, const std::vector<torch::Tensor>& biases) {
  // Where each value lives: -1 the caller's input, else a buffer.
  std::vector<int> where(desc.size(), -2);
  where[0] = -1;
  BufferPlan buffer_plan;
  struct Pending {  // per step: the buffers it reads and writes
    int src = -1, src1 = -1, dst = -1, src_tmp = -1, src1_tmp = -1;
    bool copy_shortcut = false;
  };
  std::vector<Pending> pending(steps.size());
  for (size_t k = 0; k < steps.size(); ++k) {
    const Step& s = steps[k];
    if (s.moved) continue;
    const Exec& e = execs[k];
    Pending& q = pending[k];
    const int first = e.swap ? s.in1 : s.in0, second = e.swap ? s.in0 : s.in1;
    q.src = where[first];
    if (!(desc[first] == e.src)) q.src_tmp = buffer_plan.take(e.src.get_size());
    const bool binary = s.op->kind == FusedOp::Kind::Add || s.op->kind == FusedOp::Kind::Mul;
    if (binary) {
      q.src1 = where[second];
      if (!(desc[second] == e.src1)) q.src1_tmp = buffer_plan.take(e.src1.get_size());
    }
    const bool in_place = s.sum && s.in1 != 0 && last_use[s.in1] == static_cast<int>(k) && desc[s.in1] == e.sum &&
                          scale[s.in1] == e.sum_scale;
    if (in_place) {
      q.dst = where[s.in1];
    } else {
      q.dst = buffer_plan.take(e.dst.get_size());
      q.copy_shortcut = s.sum;
    }
    where[s.out] = q.dst;
    if (q.src_tmp >= 0) buffer_plan.give(q.src_tmp);
    if (q.src1_tmp >= 0) buffer_plan.give(q.src1_tmp);
    for (int v : {s.in0, s.in1})
      if (v > 0 && last_use[v] == static_cast<int>(k) && !(in_place && v == s.in1)) buffer_plan.give(where[v]);
  }
  buffers = buffer_plan.allocate();
  scratchpad = bytes(scratch);
  const memory scratch_mem(md({static_cast<int64_t>(scratch)}, dt::u8, tag::x), cpu(), scratchpad.data_ptr());
  const auto mem = [&](const md& d, int buffer) {
    memory m(d, cpu(), buffer >= 0 ? buffers[buffer].data_ptr() : nullptr);
    if (buffer < 0) input.push_back(m);
    return m;
  };
  const auto reorder = [&](const md& from, int a, const md& to, int b, float factor, const std::string& label) {
    memory ma = mem(from, a), mb = mem(to, b);
    program.push_back({scaled_reorder(ma, mb, factor), {{DNNL_ARG_FROM, ma}, {DNNL_ARG_TO, mb}}, -1, label});
  };
  for (size_t k = 0; k < steps.size(); ++k) {
    const Step& s = steps[k];
    if (s.moved) continue;
    const Exec& e = execs[k];
    const Pending& q = pending[k];
    const int first = e.swap ? s.in1 : s.in0, second = e.swap ? s.in0 : s.in1;
    const int src = q.src_tmp >= 0 ? q.src_tmp : q.src, src1 = q.src1_tmp >= 0 ? q.src1_tmp : q.src1;
    const std::string& name = s.op->name;
    if (q.src_tmp >= 0)
      reorder(desc[first], q.src, e.src, q.src_tmp, scale[first] / e.src_scale, "reorder into " + name);
    if (q.src1_tmp >= 0)
      reorder(desc[second], q.src1, e.src1, q.src1_tmp, scale[second] / e.src1_scale, "reorder into " + name);
    if (q.copy_shortcut)
      reorder(desc[s.in1], where[s.in1], e.sum, q.dst, scale[s.in1] / e.sum_scale, "copy of the shortcut for " + name);
    Instr in;
    in.prim = e.prim;
    in.label =
        name + (s.sum ? " +sum" : "") + (s.relu ? " +relu" : "") + (s.sigmoid ? " +sigmoid" : "") + " (" + e.impl + ")";
    in.args = {{DNNL_ARG_SCRATCHPAD, scratch_mem}, {DNNL_ARG_SRC, mem(e.src, src)}, {DNNL_ARG_DST, mem(e.dst, q.dst)}};
    switch (s.op->kind) {
      case FusedOp::Kind::Conv:
        in.args.insert({DNNL_ARG_WEIGHTS, memory(e.weights, cpu(), e.weight.data_ptr())});
        in.args.insert({DNNL_ARG_BIAS, memory(md({s.op->bias.size(0)}, dt::f32, tag::x), cpu(),
                                              (biases[k].defined() ? biases[k] : s.op->bias).data_ptr())});
        break;
      case FusedOp::Kind::Add:
      case FusedOp::Kind::Mul:
        in.args.insert({DNNL_ARG_SRC_1, mem(e.src1, src1)});
        break;
      case FusedOp::Kind::Affine:
        in.args.insert({DNNL_ARG_SCALE, memory(e.src1, cpu(), s.op->weight.data_ptr())});
        in.args.insert({DNNL_ARG_SHIFT, memory(e.src1, cpu(), s.op->bias.data_ptr())});
        in.args.insert({DNNL_ARG_MEAN, memory(e.src1, cpu(), e.mean.data_ptr())});
        in.args.insert({DNNL_ARG_VARIANCE, memory(e.src1, cpu(), e.variance.data_ptr())});
        break;
      case FusedOp::Kind::PadChannels:
        // The input into the first channels of a cleared buffer.
        in.args = {{DNNL_ARG_FROM, mem(e.src, src)}, {DNNL_ARG_TO, mem(e.src1, q.dst)}};
        in.zero = q.dst;
        break;
      default:
        break;
    }
    program.push_back(std::move(in));
  }
  const int64_t c = dims[pooled_value][0];
  pooled = torch::empty({n, c});
  memory a = mem(desc[pooled_value], where[pooled_value]),
         b(md({n, c, 1, 1}, dt::f32, tag::nchw), cpu(), pooled.data_ptr());
  program.push_back(
      {scaled_reorder(a, b, scale[pooled_value]), {{DNNL_ARG_FROM, a}, {DNNL_ARG_TO, b}}, -1, "features to NC"});
  const int64_t k = fc_bias.size(0);
  logits = torch::empty({n, k});
  program.push_back({fc,
                     {{DNNL_ARG_SRC, b},
                      {DNNL_ARG_WEIGHTS, memory(fc_weights, cpu(), fc_weight.data_ptr())},
                      {DNNL_ARG_BIAS, memory(md({k}, dt::f32, tag::x), cpu(), fc_bias.data_ptr())},
                      {DNNL_ARG_DST, memory(md({n, k}, dt::f32, tag::nc), cpu(), logits.data_ptr())},
                      {DNNL_ARG_SCRATCHPAD, scratch_mem}},
                     -1,
                     fc_label});
}

struct OneDnnProgram::Impl {
  std::vector<FusedOp> ops;  // the folded net's (tensors shared with it)
  std::vector<Step> steps;   // in the order they run
  int values = 0, pooled = -1;
  int64_t channels = 0;
  InferencePrecision precision = InferencePrecision::Float32;
  // int8, per value: its type in the program (float32 where a step has no int8 kernel), whether it is never
  // negative (unsigned 8 bits), the scale of its 8-bit content (1 for float values) and its calibrated range.
  std::vector<dt> type;
  std::vector<bool> nonneg;
  std::vector<float> scale, range;
  // int8, per convolution step: its weight quantized per output channel (s8, oihw or goihw), the scales oneDNN
  // multiplies the int32 accumulator by (source scale × weight scale / destination scale) and the bias divided by
  // source scale × weight scale (oneDNN 2.x adds it before those scales).
  struct Quantized {
    torch::Tensor weight, bias;
    std::vector<float> out_scales;
    dt src = dt::undef;
    float src_scale = 1.f;
  };
  std::vector<Quantized> quant;
  std::vector<torch::Tensor> biases;  // per step: int8's bias (undefined: the op's)
  const FusedOp* linear = nullptr;    // the classifier, an inner product on the pooled features
  std::vector<int> last_use;          // per value: the last step reading it
  mutable std::mutex mutex;
  mutable std::map<std::vector<int64_t>, std::shared_ptr<Plan>> plans;    // null: declined for that shape
  mutable std::vector<std::vector<std::pair<md, torch::Tensor>>> packed;  // per step: its weight per layout
  mutable std::vector<std::pair<md, torch::Tensor>> packed_fc;            // the classifier's, per layout

  torch::Tensor packed_weight(size_t k, const md& want) const;
  std::shared_ptr<Plan> make_plan(const std::vector<int64_t>& shape) const;
  std::shared_ptr<Plan> plan(const std::vector<int64_t>& shape) const;
  std::shared_ptr<Plan> choose_threads(const std::vector<int64_t>& shape, std::shared_ptr<Plan> made) const;
  void quantize();
};

// int8's types and scales per value, and the quantized convolutions: from the steps and the calibrated ranges.
void OneDnnProgram::Impl::quantize() {
  // Without VNNI (AVX2, AVX-512 before Cascade Lake) oneDNN multiplies unsigned 8-bit activations by signed
  // weights in pairs summed into 16 bits (vpmaddubsw), which saturates with 8-bit weights: 7 bits there.
  const auto isa = static_cast<int>(dnnl::get_effective_cpu_isa());
  const auto has = [&](dnnl::cpu_isa want) { return (isa & static_cast<int>(want)) == static_cast<int>(want); };
  const bool vnni = has(dnnl::cpu_isa::avx512_core_vnni) || has(dnnl::cpu_isa::avx2_vnni);
  type.assign(values, dt::f32);
  nonneg.assign(values, false);
  scale.assign(values, 1.f);
  quant.assign(steps.size(), {});
  biases.assign(steps.size(), {});
  const auto content_scale = [&](int v, dt t) { return std::max(range[v], 1e-12f) / (t == dt::u8 ? 255.f : 127.f); };
  for (size_t k = 0; k < steps.size(); ++k) {
    const Step& s = steps[k];
    if (s.moved) continue;
    const int in = s.in0, out = s.out;
    switch (s.op->kind) {
      case Kind::Conv: {
        Quantized& q = quant[k];
        q.src = is_int8(type[in]) ? type[in] : nonneg[in] ? dt::u8 : dt::s8;
        q.src_scale = is_int8(type[in]) ? scale[in] : content_scale(in, q.src);
        nonneg[out] = s.relu || s.sigmoid;
        type[out] = s.sigmoid ? dt::f32 : nonneg[out] ? dt::u8 : dt::s8;  // an SE gate stays float32
        scale[out] = s.sigmoid ? 1.f : content_scale(out, type[out]);
        const torch::Tensor w = s.op->weight.contiguous();
        const float levels = q.src == dt::u8 && !vnni ? 63.f : 127.f;
        const torch::Tensor wscale = w.abs().amax({1, 2, 3}).clamp_min(1e-12f) / levels;
        q.weight = (w / wscale.view({-1, 1, 1, 1})).round().clamp(-levels, levels).to(torch::kInt8);
        const torch::Tensor acc = wscale * q.src_scale;  // the accumulator's unit, per output channel
        q.bias = (s.op->bias / acc).contiguous();
        biases[k] = q.bias;
        const torch::Tensor out_scales = (acc / scale[out]).contiguous();
        q.out_scales.assign(out_scales.data_ptr<float>(), out_scales.data_ptr<float>() + out_scales.numel());
        break;
      }
      case Kind::Subsample:
      case Kind::MaxPool:
      case Kind::AvgPool:
      case Kind::GlobalAvgPool:
      case Kind::PadChannels:  // the same values (or their mean): the input's type and scale
        type[out] = type[in];
        scale[out] = scale[in];
        nonneg[out] = nonneg[in];
        break;
      default:  // float32 (and never negative after a ReLU)
        nonneg[out] = s.relu || s.op->kind == Kind::Relu || s.op->kind == Kind::Sigmoid;
        break;
    }
  }
}

torch::Tensor OneDnnProgram::Impl::packed_weight(size_t k, const md& want) const {
  for (const auto& [desc, t] : packed[k])
    if (desc == want) return t;
  const FusedOp& op = *steps[k].op;
  const bool int8 = is_int8(want.data_type());
  const torch::Tensor w = int8 ? quant[k].weight : op.weight.contiguous();
  const dt t = int8 ? dt::s8 : dt::f32;
  const int64_t o = w.size(0), i = w.size(1), kh = w.size(2), kw = w.size(3), g = op.groups;
  const md user = g == 1 ? md({o, i, kh, kw}, t, tag::oihw) : md({g, o / g, i, kh, kw}, t, tag::goihw);
  torch::Tensor out = bytes(want.get_size());
  memory a(user, cpu(), w.data_ptr()), b(want, cpu(), out.data_ptr());
  dnnl::stream stream(cpu());
  dnnl::reorder(a, b).execute(stream, a, b);
  stream.wait();
  packed[k].emplace_back(want, out);
  return out;
}

std::shared_ptr<Plan> OneDnnProgram::Impl::make_plan(const std::vector<int64_t>& shape) const {
  auto plan = std::make_shared<Plan>();
  const int64_t n = plan->n = shape[0];
  const bool int8 = precision == InferencePrecision::Int8;
  const dt act = precision == InferencePrecision::BFloat16 ? dt::bf16 : dt::f32;  // float activations and weights
  plan->desc.resize(values);
  plan->dims.resize(values);
  plan->desc[0] = md({n, shape[1], shape[2], shape[3]}, dt::f32, tag::nchw);
  plan->dims[0] = {shape[1], shape[2], shape[3]};
  // A new attribute each time: copies of a primitive_attr share one handle.
  const auto base = [] {
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    return attr;
  };
  std::string impl;
  const auto checked = [&](auto pd, const std::string& what) {
    if (is_reference(pd)) throw invalid("oneDNN has only its reference " + what + " here (" + pd.impl_info_str() + ")");
    plan->scratch = std::max(plan->scratch, pd.scratchpad_desc().get_size());
    impl = pd.impl_info_str();
    return pd;
  };
  // int8: `out_scales` per output channel; a sum adds the shortcut's `sum_type` content times `sum_factor`.
  const auto with_post_ops = [&](const Step& s, const std::vector<float>& out_scales = {}, float sum_factor = 1.f,
                                 dt sum_type = dt::undef) {
    dnnl::primitive_attr attr = base();
    if (!out_scales.empty()) attr.set_output_scales(1 << 1, out_scales);
    dnnl::post_ops post;
    if (s.sum) post.append_sum(sum_factor, sum_type);
    if (s.relu) post.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
    if (s.sigmoid) post.append_eltwise(1.f, dnnl::algorithm::eltwise_logistic, 0.f, 0.f);
    attr.set_post_ops(post);
    return attr;
  };
  for (size_t k = 0; k < steps.size(); ++k) {
    const Step& s = steps[k];
    Plan::Exec e;
    if (s.moved) {
      plan->execs.push_back(e);
      continue;
    }
    const FusedOp& op = *s.op;
    const auto [c, h, w] = plan->dims[s.in0];
    const md& src = plan->desc[s.in0];
    std::array<int64_t, 3> out{c, h, w};
    switch (op.kind) {
      case Kind::Conv: {
        const int64_t o = op.weight.size(0), i = op.weight.size(1), kk = op.kernel, g = op.groups;
        const int64_t oh = (h + 2 * op.pad - kk) / op.stride + 1, ow = (w + 2 * op.pad - kk) / op.stride + 1;
        if (oh < 1 || ow < 1) throw invalid("oneDNN program: an input too small for a convolution");
        out = {o, oh, ow};
        // int8: the source, weights and destination in their 8-bit types, the accumulator rescaled per channel.
        const Quantized* q = int8 ? &quant[k] : nullptr;
        const dt src_type = q ? q->src : act, wei_type = q ? dt::s8 : act, dst_type = q ? type[s.out] : act;
        const md weights =
            g == 1 ? md({o, i, kk, kk}, wei_type, tag::any) : md({g, o / g, i, kk, kk}, wei_type, tag::any);
        const md bias({o}, dt::f32, tag::x);
        const md any_dst({n, o, oh, ow}, dst_type, tag::any);
        const std::vector<float> no_scales;
        // A sum reads the shortcut in the destination's layout: int8 in its own type and scale (float32 values
        // quantized on the way in, signed), else as the destination's type.
        const dt sum_type = !s.sum                 ? dt::undef
                            : !q                   ? act
                            : is_int8(type[s.in1]) ? type[s.in1]
                            : is_int8(dst_type)    ? dt::s8
                                                   : dst_type;
        if (s.sum) e.sum_scale = !is_int8(sum_type) ? 1.f : is_int8(type[s.in1]) ? scale[s.in1] : range[s.in1] / 127.f;
        if (q) e.src_scale = q->src_scale;
        const auto make = [&](dnnl::algorithm alg, const md& a, const md& b) {
          return dnnl::convolution_forward::primitive_desc(
              {dnnl::prop_kind::forward_inference,
               alg,
               a,
               weights,
               bias,
               b,
               {op.stride, op.stride},
               {op.pad, op.pad},
               {op.pad, op.pad}},
              with_post_ops(s, q ? q->out_scales : no_scales, e.sum_scale / scale[s.out], sum_type), cpu());
        };
        // The input's layout as it comes (a sum writes into the shortcut's); else the layouts oneDNN picks.
        // convolution_auto: oneDNN's choice of direct or Winograd (ResNet-18 at batch 32 here 557 -> 329 ms).
        // (bfloat16: the caller's float32 input converted by the reorder into the first convolution)
        const md first_src = src.data_type() == src_type ? src : md({n, c, h, w}, src_type, tag::any);
        const md first_dst = s.sum ? with_type(plan->desc[s.in1], dst_type) : any_dst;
        auto pd = make(dnnl::algorithm::convolution_auto, first_src, first_dst);
        if (is_reference(pd))
          pd = make(dnnl::algorithm::convolution_auto, md({n, c, h, w}, src_type, tag::any), any_dst);
        pd = checked(pd, "convolution");
        // Where auto keeps the direct kernel of a 3×3 stride-1 convolution, Winograd (F(4,3), AVX-512 only) where
        // oneDNN has it: at batch 1 auto never picks it, and whole nets measured faster with it here (ResNet-18
        // 19.3 -> 13.0 ms, ResNet-50 43 -> 34 ms; CIFAR ResNet-20 and batch 32 unchanged within noise). Its logits
        // stay within 2e-6 of the direct ones relative to the largest (bench/infer-engines.ts, devices.test.ts).
        if (!q && kk == 3 && op.stride == 1 && g == 1 &&
            std::string(pd.impl_info_str()).find("wino") == std::string::npos) {
          try {
            auto wino = make(dnnl::algorithm::convolution_winograd, pd.src_desc(), pd.dst_desc());
            if (!is_reference(wino)) pd = checked(wino, "convolution");
          } catch (const dnnl::error&) {
            // no Winograd kernel for this shape or ISA
          }
        }
        e.prim = dnnl::convolution_forward(pd);
        e.src = pd.src_desc();
        e.dst = pd.dst_desc();
        e.weights = pd.weights_desc();
        e.weight = packed_weight(k, e.weights);
        if (s.sum) e.sum = with_type(e.dst, sum_type);
        break;
      }
      case Kind::Relu:
      case Kind::Sigmoid:
      case Kind::Scale: {
        const auto alg = op.kind == Kind::Relu      ? dnnl::algorithm::eltwise_relu
                         : op.kind == Kind::Sigmoid ? dnnl::algorithm::eltwise_logistic
                                                    : dnnl::algorithm::eltwise_linear;
        const float alpha = op.kind == Kind::Scale ? static_cast<float>(op.scale) : 0.f;
        e.src = e.dst = int8 ? with_type(src, dt::f32) : src;
        auto pd = checked(dnnl::eltwise_forward::primitive_desc(
                              {dnnl::prop_kind::forward_inference, alg, e.src, alpha, 0.f}, base(), cpu()),
                          "eltwise");
        e.prim = dnnl::eltwise_forward(pd);
        break;
      }
      case Kind::Add:
      case Kind::Mul: {
        // The second operand in the first's layout (an SE gate's N×C×1×1 broadcasts in its own); where oneDNN's
        // JIT kernels do not take those layouts, both operands in this ISA's blocked layout.
        const auto& d1 = plan->dims[s.in1];
        e.swap = op.kind == Kind::Mul && h * w < d1[1] * d1[2];
        const std::array<int64_t, 3> a = e.swap ? d1 : out, b = e.swap ? out : d1;
        out = a;
        const auto as_float = [&](const md& d) { return int8 ? with_type(d, dt::f32) : d; };
        e.src = as_float(e.swap ? plan->desc[s.in1] : src);
        e.src1 = op.kind == Kind::Add ? e.src : as_float(plan->desc[e.swap ? s.in0 : s.in1]);
        const auto alg = op.kind == Kind::Add ? dnnl::algorithm::binary_add : dnnl::algorithm::binary_mul;
        const auto make = [&] {
          return dnnl::binary::primitive_desc({alg, e.src, e.src1, e.src}, with_post_ops(s), cpu());
        };
        auto pd = make();
        if (is_reference(pd)) {
          const tag blocked = OneDnnTraining::block() == 16 ? tag::nChw16c : tag::nChw8c;
          e.src = md({n, a[0], a[1], a[2]}, act, blocked);
          e.src1 = md({n, b[0], b[1], b[2]}, act, blocked);
          pd = make();
        }
        pd = checked(pd, "binary operation");
        e.prim = dnnl::binary(pd);
        e.dst = e.src;
        break;
      }
      case Kind::Affine: {
        // A BatchNorm after no convolution (pre-activation), folded to x·scale + shift: oneDNN's inference
        // BatchNorm on mean 0, variance 1 and ε 0 (so σ is exactly 1), with the ReLU after it.
        auto flags = dnnl::normalization_flags::use_global_stats | dnnl::normalization_flags::use_scale |
                     dnnl::normalization_flags::use_shift;
        if (s.relu) flags = flags | dnnl::normalization_flags::fuse_norm_relu;
        e.src = e.dst = int8 ? with_type(src, dt::f32) : src;
        auto pd = checked(dnnl::batch_normalization_forward::primitive_desc(
                              {dnnl::prop_kind::forward_inference, e.src, 0.f, flags}, base(), cpu()),
                          "batch normalization");
        e.prim = dnnl::batch_normalization_forward(pd);
        e.src1 = md({c}, dt::f32, tag::x);
        e.mean = torch::zeros({c});
        e.variance = torch::ones({c});
        break;
      }
      case Kind::PadChannels: {
        // Option A's shortcut: the channels appended as zeros, in the blocked layout the residual's sum writes.
        out = {c + op.pad, h, w};
        e.src = src;
        e.dst = md({n, c + op.pad, h, w}, src.data_type(), OneDnnTraining::block() == 16 ? tag::nChw16c : tag::nChw8c);
        e.src1 = e.dst.submemory_desc({n, c, h, w}, {0, 0, 0, 0});
        e.prim = dnnl::reorder(dnnl::reorder::primitive_desc(cpu(), e.src, cpu(), e.src1));
        break;
      }
      case Kind::Subsample:
      case Kind::MaxPool:
      case Kind::AvgPool:
      case Kind::GlobalAvgPool: {
        int64_t kh = op.kernel, kw = op.kernel, st = op.stride, p = op.pad, oh, ow;
        auto alg = dnnl::algorithm::pooling_max;
        if (op.kind == Kind::Subsample) {  // x[:, :, ::s, ::s]: the max of 1×1 windows s apart
          kh = kw = 1;
          p = 0;
          oh = (h - 1) / st + 1;
          ow = (w - 1) / st + 1;
        } else if (op.kind == Kind::MaxPool) {  // PyTorch rounds down
          oh = (h + 2 * p - kh) / st + 1;
          ow = (w + 2 * p - kw) / st + 1;
        } else if (op.kind == Kind::AvgPool) {  // ceil mode, no padding, padding not counted
          alg = dnnl::algorithm::pooling_avg_exclude_padding;
          p = 0;
          oh = (h - kh + st - 1) / st + 1;
          ow = (w - kw + st - 1) / st + 1;
        } else {
          alg = dnnl::algorithm::pooling_avg_exclude_padding;
          kh = h;
          kw = w;
          st = 1;
          p = 0;
          oh = ow = 1;
        }
        if (oh < 1 || ow < 1) throw invalid("oneDNN program: an input too small for a pooling");
        out = {c, oh, ow};
        const int64_t pad_r_h = (oh - 1) * st + kh - h - p, pad_r_w = (ow - 1) * st + kw - w - p;
        auto pd = checked(dnnl::pooling_forward::primitive_desc({dnnl::prop_kind::forward_inference,
                                                                 alg,
                                                                 src,
                                                                 md({n, c, oh, ow}, src.data_type(), tag::any),
                                                                 {st, st},
                                                                 {kh, kw},
                                                                 {p, p},
                                                                 {pad_r_h, pad_r_w}},
                                                                base(), cpu()),
                          "pooling");
        e.prim = dnnl::pooling_forward(pd);
        e.src = src;
        e.dst = pd.dst_desc();
        break;
      }
      default:
        throw invalid("oneDNN program: no step for an operator");
    }
    e.impl = op.kind == Kind::PadChannels ? "reorder" : impl;
    plan->desc[s.out] = e.dst;
    plan->dims[s.out] = out;
    plan->execs.push_back(std::move(e));
  }
  {
    const int64_t c = plan->dims[pooled][0], k = linear->weight.size(0);
    auto pd = checked(dnnl::inner_product_forward::primitive_desc(
                          {dnnl::prop_kind::forward_inference, md({n, c}, dt::f32, tag::nc),
                           md({k, c}, dt::f32, tag::any), md({k}, dt::f32, tag::x), md({n, k}, dt::f32, tag::nc)},
                          base(), cpu()),
                      "inner product");
    plan->fc = dnnl::inner_product_forward(pd);
    plan->fc_weights = pd.weights_desc();
    plan->fc_label = linear->name + " (" + impl + ")";
    plan->fc_bias = linear->bias.contiguous();
    for (const auto& [desc, t] : packed_fc)
      if (desc == plan->fc_weights) plan->fc_weight = t;
    if (!plan->fc_weight.defined()) {
      const torch::Tensor w = linear->weight.contiguous();
      plan->fc_weight = bytes(plan->fc_weights.get_size());
      memory a(md({k, c}, dt::f32, tag::ab), cpu(), w.data_ptr()),
          b(plan->fc_weights, cpu(), plan->fc_weight.data_ptr());
      dnnl::stream stream(cpu());
      dnnl::reorder(a, b).execute(stream, a, b);
      stream.wait();
      packed_fc.emplace_back(plan->fc_weights, plan->fc_weight);
    }
  }
  plan->bind(steps, last_use, pooled, scale, biases);
  return plan;
}

std::shared_ptr<Plan> OneDnnProgram::Impl::plan(const std::vector<int64_t>& shape) const {
  auto it = plans.find(shape);
  std::shared_ptr<Plan> made;
  if (it != plans.end()) {
    if (!it->second || it->second->measured) return it->second;
    made = it->second;  // made by build() on another thread, not yet measured
  } else {
    try {
      made = make_plan(shape);
    } catch (const std::exception&) {
      plans.emplace(shape, nullptr);  // this shape runs on ATen
      return nullptr;
    }
  }
  made = choose_threads(shape, made);
  plans[shape] = made;
  return made;
}

// A small program (a CIFAR net at batch 1: 25 primitives of some 20 µs each) loses more to waking the OpenMP team
// for every primitive than it gains from it: CIFAR ResNet-20 at batch 1 took 1.06 ms on 2 threads here and 0.56 ms
// on 1, where onnxruntime's spinning pool takes 0.66. So a plan whose run takes under 3 ms is timed again made for
// half the threads, and half again down to one (oneDNN sizes a primitive's work at its creation), and the fastest
// is kept where it beats the one before by 10%.
std::shared_ptr<Plan> OneDnnProgram::Impl::choose_threads(const std::vector<int64_t>& shape,
                                                          std::shared_ptr<Plan> made) const {
  made->measured = true;
  const int n = intra_op_threads();
  if (n <= 1) return made;
  const torch::Tensor input = torch::zeros(shape);
  const auto time = [&](Plan& p) {
    const auto nothing = [](dnnl::stream&, size_t) {};
    p.run(input, nothing);
    std::vector<double> ms;
    for (int i = 0; i < 5; ++i) {
      const auto start = std::chrono::steady_clock::now();
      p.run(input, nothing);
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    }
    std::sort(ms.begin(), ms.end());
    return ms[2];
  };
  double best = time(*made);
  if (best > 3.0) return made;
  for (int k = n / 2; k >= 1; k /= 2) {
    std::shared_ptr<Plan> fewer;
    try {
      CallingThreadThreads on(k);
      fewer = make_plan(shape);
    } catch (const std::exception&) {
      break;
    }
    fewer->threads = k;
    fewer->measured = true;
    const double ms = time(*fewer);
    if (ms < 0.9 * best) {
      best = ms;
      made = fewer;
    }
  }
  return made;
}

OneDnnProgram::OneDnnProgram(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
OneDnnProgram::~OneDnnProgram() = default;

std::unique_ptr<OneDnnProgram> OneDnnProgram::build(const std::vector<FusedOp>& ops, int values, int output,
                                                    int64_t channels, int64_t height, int64_t width,
                                                    InferencePrecision precision, const std::vector<float>& ranges,
                                                    std::string& why) {
  const bool int8 = precision == InferencePrecision::Int8;
  if (int8 && ranges.size() != static_cast<size_t>(values)) throw invalid("int8: no calibrated ranges");
  if (why = OneDnnTraining::built(); !why.empty()) return nullptr;
  if (!onednn_enabled()) {
    why = "oneDNN is off in this process";
    return nullptr;
  }
  auto impl = std::make_unique<Impl>();
  impl->ops = ops;
  impl->values = values;
  impl->channels = channels;
  impl->precision = precision;
  impl->scale.assign(values, 1.f);
  if (int8) impl->range = ranges;  // per value of the program: what its step writes, fused ReLU and add included
  std::vector<int> alias(values), readers(values, 0), producer(values, -1);
  for (int v = 0; v < values; ++v) alias[v] = v;
  for (const FusedOp& op : impl->ops) {
    if (op.in0 >= 0) ++readers[op.in0];
    if (op.in1 >= 0) ++readers[op.in1];
  }
  auto& steps = impl->steps;
  const auto fusable = [&](int v) {
    const int p = producer[v];
    return p >= 0 && steps[p].op->kind == Kind::Conv && !steps[p].relu && !steps[p].sigmoid && !steps[p].sum;
  };
  for (size_t i = 0; i < impl->ops.size(); ++i) {
    const FusedOp& op = impl->ops[i];
    const int a = alias[op.in0], b = op.in1 >= 0 ? alias[op.in1] : -1;
    switch (op.kind) {
      case Kind::Flatten:
        alias[op.out] = a;
        continue;
      case Kind::Linear:
        if (i + 1 != impl->ops.size() || op.out != output) {
          why = "the classifier is not the net's last operator";
          return nullptr;
        }
        impl->linear = &op;
        impl->pooled = a;
        continue;
      case Kind::Relu:
      case Kind::Sigmoid: {
        // Into the step that writes its input, when nothing else reads that.
        const int p = producer[a];
        const bool conv_like = p >= 0 && (steps[p].op->kind == Kind::Conv || steps[p].op->kind == Kind::Add ||
                                          steps[p].op->kind == Kind::Mul);
        if (conv_like && readers[op.in0] == 1 && !steps[p].relu && !steps[p].sigmoid &&
            (op.kind == Kind::Relu || steps[p].op->kind == Kind::Conv)) {
          (op.kind == Kind::Relu ? steps[p].relu : steps[p].sigmoid) = true;
          alias[op.out] = a;
          if (int8) impl->range[a] = ranges[op.out];
          continue;
        }
        break;
      }
      case Kind::Add: {
        // The residual's last convolution adds the shortcut itself: moved here, after both are computed.
        const int conv = fusable(a) && readers[op.in0] == 1 ? a : fusable(b) && readers[op.in1] == 1 ? b : -1;
        if (conv >= 0) {
          Step s = steps[producer[conv]];
          steps[producer[conv]].moved = true;
          s.sum = true;
          s.in1 = conv == a ? b : a;
          producer[conv] = static_cast<int>(steps.size());
          steps.push_back(s);
          alias[op.out] = conv;
          if (int8) impl->range[conv] = ranges[op.out];
          continue;
        }
        break;
      }
      default:
        break;
    }
    Step s;
    s.op = &op;
    s.in0 = a;
    s.in1 = b;
    s.out = op.out;
    if (op.kind == Kind::Conv || op.kind == Kind::Affine) s.relu = op.relu;
    producer[op.out] = static_cast<int>(steps.size());
    steps.push_back(s);
  }
  if (!impl->linear) {
    why = "the net does not end in a classifier";
    return nullptr;
  }
  impl->last_use.assign(values, -1);
  for (size_t k = 0; k < steps.size(); ++k) {
    if (steps[k].moved) continue;
    impl->last_use[steps[k].in0] = static_cast<int>(k);
    if (steps[k].in1 >= 0) impl->last_use[steps[k].in1] = static_cast<int>(k);
  }
  impl->last_use[impl->pooled] = static_cast<int>(steps.size());
  impl->packed.resize(steps.size());
  impl->biases.resize(steps.size());
  try {
    if (int8) impl->quantize();
    const std::vector<int64_t> one{1, channels, height, width};
    impl->plans.emplace(one, impl->make_plan(one));
  } catch (const std::exception& e) {
    why = std::string(precision == InferencePrecision::BFloat16 ? "bfloat16: " : int8 ? "int8: " : "") + e.what();
    return nullptr;
  }
  return std::unique_ptr<OneDnnProgram>(new OneDnnProgram(std::move(impl)));
}

torch::Tensor OneDnnProgram::forward(const torch::Tensor& x) const {
  const Impl& p = *impl_;
  std::lock_guard<std::mutex> lock(p.mutex);  // a plan's buffers serve one call at a time
  c10::InferenceMode guard;
  const std::shared_ptr<Plan> plan = p.plan(x.sizes().vec());
  if (!plan) return {};
  plan->run(x.contiguous(), [](dnnl::stream&, size_t) {});
  return plan->logits.clone();
}

std::vector<std::pair<std::string, double>> OneDnnProgram::profile(const torch::Tensor& x) const {
  const Impl& p = *impl_;
  std::lock_guard<std::mutex> lock(p.mutex);
  c10::InferenceMode guard;
  const std::shared_ptr<Plan> plan = p.plan(x.sizes().vec());
  std::vector<std::pair<std::string, double>> out;
  if (!plan) return out;
  using clock = std::chrono::steady_clock;
  auto start = clock::now();
  plan->run(x.contiguous(), [&](dnnl::stream& stream, size_t i) {
    stream.wait();
    const auto now = clock::now();
    out.emplace_back(plan->program[i].label, std::chrono::duration<double, std::milli>(now - start).count());
    start = now;
  });
  return out;
}

}  // namespace rt

#else  // built without oneDNN's 2.x headers: the ATen ops run

namespace rt {

struct OneDnnProgram::Impl {};
OneDnnProgram::OneDnnProgram(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
OneDnnProgram::~OneDnnProgram() = default;
std::unique_ptr<OneDnnProgram> OneDnnProgram::build(const std::vector<FusedOp>&, int, int, int64_t, int64_t, int64_t,
                                                    InferencePrecision, const std::vector<float>&, std::string& why) {
  why = "this build has no oneDNN 2.x headers (Debian's libdnnl-dev)";
  return nullptr;
}
torch::Tensor OneDnnProgram::forward(const torch::Tensor&) const { return {}; }
std::vector<std::pair<std::string, double>> OneDnnProgram::profile(const torch::Tensor&) const { return {}; }

}  // namespace rt

#endif
