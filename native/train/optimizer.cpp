#include "train/optimizer.h"

#include <ATen/ops/_foreach_add.h>
#include <ATen/ops/_foreach_addcdiv.h>
#include <ATen/ops/_foreach_addcmul.h>
#include <ATen/ops/_foreach_div.h>
#include <ATen/ops/_foreach_mul.h>
#include <ATen/ops/_foreach_sqrt.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "common/error.h"

namespace rt {

Optimizer::Optimizer(const std::vector<NamedTensor>& params, OptimizerConfig config) : config_(config) {
  Group decay, no_decay;
  decay.weight_decay = config_.weight_decay;
  no_decay.weight_decay = 0.0;
  for (const auto& p : params) {
    if (!p.parameter || !p.tensor.requires_grad()) continue;
    Group& g = (config_.no_decay_bn_bias && p.tensor.dim() <= 1) ? no_decay : decay;
    g.names.push_back(p.name);
    g.params.push_back(p.tensor);
  }
  for (Group* g : {&decay, &no_decay})
    if (!g->params.empty()) groups_.push_back(std::move(*g));
  if (groups_.empty()) throw invalid("nothing to train: every parameter is frozen");
}

void Optimizer::zero_grad() {
  // Like set_to_none=True: the next backward writes fresh gradients instead of adding into zeros.
  for (auto& g : groups_)
    for (auto& p : g.params) p.mutable_grad() = torch::Tensor();
}

void Optimizer::step(double lr) {
  torch::NoGradGuard no_grad;
  ++steps_;
  const torch::Tensor clip = config_.kind == OptimizerConfig::Kind::Lamb ? lamb_clip() : torch::Tensor();
  for (auto& g : groups_) {
    if (config_.kind == OptimizerConfig::Kind::SGD)
      step_sgd(g, lr);
    else if (config_.kind == OptimizerConfig::Kind::AdamW)
      step_adamw(g, lr);
    else
      step_lamb(g, lr, clip);
  }
}

torch::Tensor Optimizer::lamb_clip() const {
  if (config_.max_grad_norm <= 0) return torch::Tensor();
  std::vector<torch::Tensor> norms;
  for (const auto& g : groups_)
    for (const auto& p : g.params)
      if (p.grad().defined()) norms.push_back(p.grad().norm(2).reshape({1}));
  if (norms.empty()) return torch::Tensor();
  return (torch::cat(norms).norm(2) / config_.max_grad_norm).clamp_min(1.0);
}

void Optimizer::step_lamb(Group& g, double lr, const torch::Tensor& clip) {
  // timm's Lamb (bias correction and gradient averaging on): g' = g / clip; m = β1·m + (1−β1)·g';
  // v = β2·v + (1−β2)·g'²; u = (m/(1−β1^t)) / (√v/√(1−β2^t) + eps) + wd·p; with weight decay (or always_adapt)
  // u *= ‖p‖/‖u‖ (1 where either norm is 0; at most 1 with trust_clip); p -= lr·u
  if (g.slot_a.empty()) {
    for (auto& p : g.params) {
      g.slot_a.push_back(torch::zeros_like(p, torch::MemoryFormat::Preserve));
      g.slot_b.push_back(torch::zeros_like(p, torch::MemoryFormat::Preserve));
    }
  }
  const double t = static_cast<double>(steps_);
  const double bc1 = 1.0 - std::pow(config_.beta1, t), bc2 = 1.0 - std::pow(config_.beta2, t);
  for (size_t i = 0; i < g.params.size(); ++i) {
    auto& p = g.params[i];
    if (!p.grad().defined()) continue;
    const torch::Tensor grad = clip.defined() ? p.grad() / clip : p.grad();
    auto& m = g.slot_a[i];
    auto& v = g.slot_b[i];
    m.lerp_(grad, 1.0 - config_.beta1);
    v.mul_(config_.beta2).addcmul_(grad, grad, 1.0 - config_.beta2);
    torch::Tensor update = (m / bc1).div_((v.sqrt() / std::sqrt(bc2)).add_(config_.eps));
    if (g.weight_decay != 0.0) update.add_(p, g.weight_decay);
    if (g.weight_decay != 0.0 || config_.always_adapt) {
      const torch::Tensor w_norm = p.norm(2), u_norm = update.norm(2);
      torch::Tensor ratio = torch::where(
          w_norm > 0, torch::where(u_norm > 0, w_norm / u_norm, torch::ones_like(w_norm)), torch::ones_like(w_norm));
      if (config_.trust_clip) ratio = ratio.clamp_max(1.0);
      update.mul_(ratio);
    }
    p.add_(update, -lr);
  }
}

void Optimizer::step_sgd(Group& g, double lr) {
  // torch.optim.SGD (dampening 0): d = grad + wd·p; buf = momentum·buf + d (buf = d at first);
  // d = d + momentum·buf (Nesterov) or buf; p -= lr·d
  std::vector<torch::Tensor> params, grads, bufs;
  std::vector<size_t> where;
  for (size_t i = 0; i < g.params.size(); ++i) {
    if (!g.params[i].grad().defined()) continue;
    params.push_back(g.params[i]);
    grads.push_back(g.params[i].grad());
    where.push_back(i);
  }
  if (params.empty()) return;
  if (g.weight_decay != 0.0) grads = at::_foreach_add(grads, params, g.weight_decay);
  if (config_.momentum != 0.0) {
    if (g.slot_a.empty()) g.slot_a.assign(g.params.size(), torch::Tensor());
    for (size_t k = 0; k < where.size(); ++k) {
      auto& buf = g.slot_a[where[k]];
      if (!buf.defined())
        buf = grads[k].clone().detach();
      else
        buf.mul_(config_.momentum).add_(grads[k]);
      bufs.push_back(buf);
    }
    if (config_.nesterov)
      grads = at::_foreach_add(grads, bufs, config_.momentum);
    else
      grads = bufs;
  }
  at::_foreach_add_(params, grads, -lr);
}

void Optimizer::step_sgd_tensor_lr(const torch::Tensor& lr) {
  torch::NoGradGuard no_grad;
  ++steps_;
  for (auto& g : groups_) {
    for (size_t i = 0; i < g.params.size(); ++i) {
      auto& p = g.params[i];
      if (!p.grad().defined()) continue;
      torch::Tensor d = g.weight_decay != 0.0 ? p.grad().add(p, g.weight_decay) : p.grad();
      if (config_.momentum != 0.0) {
        auto& buf = g.slot_a.at(i);
        buf.mul_(config_.momentum).add_(d);
        d = config_.nesterov ? d.add(buf, config_.momentum) : buf;
      }
      p.sub_(d * lr);
    }
  }
}

void Optimizer::step_adamw(Group& g, double lr) {
  // torch.optim.AdamW (amsgrad off): p *= 1 − lr·wd; m = β1·m + (1−β1)·g; v = β2·v + (1−β2)·g²;
  // p -= lr/(1−β1^t) · m / (√v/√(1−β2^t) + eps)
  std::vector<torch::Tensor> params, grads, m, v;
  if (g.slot_a.empty()) {
    for (auto& p : g.params) {
      g.slot_a.push_back(torch::zeros_like(p, torch::MemoryFormat::Preserve));
      g.slot_b.push_back(torch::zeros_like(p, torch::MemoryFormat::Preserve));
    }
  }
  for (size_t i = 0; i < g.params.size(); ++i) {
    if (!g.params[i].grad().defined()) continue;
    params.push_back(g.params[i]);
    grads.push_back(g.params[i].grad());
    m.push_back(g.slot_a[i]);
    v.push_back(g.slot_b[i]);
  }
  if (params.empty()) return;
  const double t = static_cast<double>(steps_);
  if (g.weight_decay != 0.0) at::_foreach_mul_(params, 1.0 - lr * g.weight_decay);
  at::_foreach_mul_(m, config_.beta1);
  at::_foreach_add_(m, grads, 1.0 - config_.beta1);
  at::_foreach_mul_(v, config_.beta2);
  at::_foreach_addcmul_(v, grads, grads, 1.0 - config_.beta2);
  const double bc1 = 1.0 - std::pow(config_.beta1, t), bc2 = 1.0 - std::pow(config_.beta2, t);
  auto denom = at::_foreach_sqrt(v);
  at::_foreach_div_(denom, std::sqrt(bc2));
  at::_foreach_add_(denom, config_.eps);
  at::_foreach_addcdiv_(params, m, denom, -lr / bc1);
}

std::vector<NamedTensor> Optimizer::state() const {
  std::vector<NamedTensor> out;
  const bool sgd = config_.kind == OptimizerConfig::Kind::SGD;
  for (const auto& g : groups_) {
    for (size_t i = 0; i < g.names.size(); ++i) {
      if (i < g.slot_a.size() && g.slot_a[i].defined())
        out.push_back({g.names[i] + (sgd ? ".momentum_buffer" : ".exp_avg"), g.slot_a[i], false});
      if (i < g.slot_b.size() && g.slot_b[i].defined()) out.push_back({g.names[i] + ".exp_avg_sq", g.slot_b[i], false});
    }
  }
  return out;
}

void Optimizer::load_state(const std::vector<std::pair<std::string, torch::Tensor>>& state) {
  std::map<std::string, torch::Tensor> given(state.begin(), state.end());
  const bool sgd = config_.kind == OptimizerConfig::Kind::SGD;
  torch::NoGradGuard no_grad;
  for (auto& g : groups_) {
    g.slot_a.assign(g.params.size(), torch::Tensor());
    if (!sgd) g.slot_b.assign(g.params.size(), torch::Tensor());
    for (size_t i = 0; i < g.params.size(); ++i) {
      auto take = [&](const std::string& slot) -> torch::Tensor {
        auto it = given.find(g.names[i] + slot);
        if (it == given.end()) return torch::Tensor();
        if (it->second.sizes() != g.params[i].sizes())
          throw Error("ERR_STATE", "optimizer state " + it->first + " does not fit its parameter");
        return it->second.to(g.params[i].device(), g.params[i].scalar_type()).clone();
      };
      g.slot_a[i] = take(sgd ? ".momentum_buffer" : ".exp_avg");
      if (!sgd) {
        g.slot_b[i] = take(".exp_avg_sq");
        if (!g.slot_a[i].defined() || !g.slot_b[i].defined())
          throw Error("ERR_STATE",
                      "optimizer state for " + g.names[i] + " is missing (AdamW and LAMB need exp_avg and exp_avg_sq)");
      }
    }
    if (!sgd) continue;
    // SGD buffers are all present or all absent (absent: no step taken yet).
    const auto present =
        std::count_if(g.slot_a.begin(), g.slot_a.end(), [](const torch::Tensor& b) { return b.defined(); });
    if (present != 0 && present != static_cast<int64_t>(g.slot_a.size()))
      throw Error("ERR_STATE", "optimizer state has momentum buffers for only some parameters");
  }
}

}  // namespace rt
