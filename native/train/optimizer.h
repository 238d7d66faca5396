#pragma once
// SGD (momentum, Nesterov, weight decay), AdamW and LAMB, written as multi-tensor (_foreach) updates: the same
// arithmetic as torch.optim, few kernel launches, and a state we name by parameter (for checkpoints)
// on any libtorch version.
#include <torch/types.h>

#include <string>
#include <vector>

#include "models/model.h"

namespace rt {

// Every value comes from the facade (lib/train/options/ holds the defaults); none is chosen here.
struct OptimizerConfig {
  enum class Kind { SGD, AdamW, Lamb };
  Kind kind = Kind::SGD;
  double momentum = 0, weight_decay = 0;
  bool nesterov = false;
  double beta1 = 0, beta2 = 0, eps = 0;
  // LAMB (timm's Lamb): the gradients divided by max(1, global norm / max_grad_norm) first (0: off); the trust
  // ratio ‖p‖/‖update‖ clipped at 1 (trust_clip); applied to the groups without weight decay too (always_adapt).
  double max_grad_norm = 0;
  bool trust_clip = false, always_adapt = false;
  bool no_decay_bn_bias = false;  // no weight decay on BN parameters and biases (every 1-D parameter)
};

class Optimizer {
 public:
  // The trainable parameters (requires_grad) of the named list; frozen ones are left out.
  Optimizer(const std::vector<NamedTensor>& params, OptimizerConfig config);
  void zero_grad();
  void step(double lr);
  // SGD with the rate read from a one-element device tensor: the form a captured CUDA graph can replay with
  // a changing rate. Needs the momentum buffers to exist (one step() first).
  void step_sgd_tensor_lr(const torch::Tensor& lr);
  bool is_sgd() const { return config_.kind == OptimizerConfig::Kind::SGD; }

  // Momentum buffers (SGD) or moments (AdamW) as "<param>.<slot>", plus the step count.
  std::vector<NamedTensor> state() const;
  void load_state(const std::vector<std::pair<std::string, torch::Tensor>>& state);
  int64_t steps() const { return steps_; }
  void set_steps(int64_t steps) { steps_ = steps; }

 private:
  struct Group {
    std::vector<std::string> names;
    std::vector<torch::Tensor> params;
    double weight_decay = 0.0;
    std::vector<torch::Tensor> slot_a, slot_b;  // SGD: momentum buffer; AdamW and LAMB: exp_avg, exp_avg_sq
  };
  void step_sgd(Group& g, double lr);
  void step_adamw(Group& g, double lr);
  void step_lamb(Group& g, double lr, const torch::Tensor& clip);
  // LAMB's divisor of every gradient: max(1, global norm / max_grad_norm), over every group (undefined: off).
  torch::Tensor lamb_clip() const;

  OptimizerConfig config_;
  std::vector<Group> groups_;
  int64_t steps_ = 0;
};

}  // namespace rt
