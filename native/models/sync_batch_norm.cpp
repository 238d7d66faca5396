#include "models/sync_batch_norm.h"

#include "common/autograd_node.h"

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>

#include <algorithm>
#include <utility>

namespace rt {

namespace {

// The open scope's sum, per thread: the trainer's forward runs on one thread.
thread_local std::shared_ptr<const SumOverRanks> current_sum;

// The backward of a sum over ranks is the sum over ranks of the gradients: every rank's loss depends on the total.
struct SumOverRanksBackward : torch::autograd::Node {
  explicit SumOverRanksBackward(std::shared_ptr<const SumOverRanks> sum) : sum_(std::move(sum)) {}
  torch::autograd::variable_list apply(torch::autograd::variable_list&& grads) override {
    torch::Tensor g = grads[0].contiguous().clone();
    (*sum_)(g);
    return {g};
  }
  std::shared_ptr<const SumOverRanks> sum_;
};

torch::Tensor sum_over_ranks(const torch::Tensor& t, const std::shared_ptr<const SumOverRanks>& sum) {
  torch::Tensor out = t.detach().contiguous().clone();
  (*sum)(out);
  if (t.requires_grad()) {
    auto node = make_autograd_node<SumOverRanksBackward>(sum);
    node->set_next_edges(torch::autograd::collect_next_edges(t));
    torch::autograd::set_history(out, node);
  }
  return out;
}

// The world's mean and biased variance per channel from each rank's centred sums, combined (Chan's parallel
// formula); one all-reduce of 3C + 1 values. All of it in double, the rank's own sums too: their backward in
// float32 cancels, and lost 1e-3 of the gradients (libtorch 2.6 here; the same formula in PyTorch 1.13).
torch::Tensor sync_batch_norm(const torch::nn::BatchNorm2d& bn, const torch::Tensor& input,
                              const std::shared_ptr<const SumOverRanks>& sum) {
  const auto& o = bn->options;
  // The normalisation runs in float32 (half inputs under autocast are promoted), in float64 for a float64 net.
  const torch::ScalarType work = input.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
  const torch::Tensor x = input.to(work);
  const int64_t c = x.size(1);
  const double n = static_cast<double>(x.numel() / c);
  const torch::Tensor x64 = x.to(torch::kFloat64);
  const torch::Tensor mean64 = x64.mean({0, 2, 3});
  const torch::Tensor m2 = (x64 - mean64.view({1, c, 1, 1})).square().sum({0, 2, 3});
  const torch::Tensor local = torch::cat({mean64 * n, m2, mean64.square() * n, torch::full({1}, n, mean64.options())});
  const torch::Tensor total = sum_over_ranks(local, sum);
  const double count = total[3 * c].item<double>();
  const torch::Tensor world_mean = total.slice(0, 0, c) / count;
  // Σ m2 + Σ n·mean² − N·mean_world² = Σ over ranks of (m2 + n·(mean − mean_world)²).
  const torch::Tensor world_var =
      ((total.slice(0, c, 2 * c) + total.slice(0, 2 * c, 3 * c)) / count - world_mean.square()).clamp_min(0);
  const torch::Tensor invstd = (world_var + o.eps()).rsqrt();
  torch::Tensor scale = invstd.to(work);
  if (o.affine()) scale = scale * bn->weight;
  torch::Tensor y = (x - world_mean.to(work).view({1, c, 1, 1})) * scale.view({1, c, 1, 1});
  if (o.affine()) y = y + bn->bias.view({1, c, 1, 1});
  if (o.track_running_stats()) {
    torch::NoGradGuard no_grad;
    bn->num_batches_tracked.add_(1);
    // momentum unset: a cumulative average, as PyTorch's BatchNorm keeps it.
    const double m = o.momentum() ? *o.momentum() : 1.0 / bn->num_batches_tracked.item<double>();
    bn->running_mean.mul_(1 - m).add_(world_mean.to(bn->running_mean.scalar_type()), m);
    // The running variance is the unbiased one, over the world's count.
    bn->running_var.mul_(1 - m).add_((world_var * (count / std::max(1.0, count - 1))).to(bn->running_var.scalar_type()),
                                     m);
  }
  return y.scalar_type() == input.scalar_type() ? y : y.to(input.scalar_type());
}

}  // namespace

SyncBatchNormScope::SyncBatchNormScope(SumOverRanks sum) : previous_(std::move(current_sum)) {
  current_sum = std::make_shared<const SumOverRanks>(std::move(sum));
}

SyncBatchNormScope::~SyncBatchNormScope() { current_sum = std::move(previous_); }

torch::Tensor apply_bn(const torch::nn::BatchNorm2d& bn, const torch::Tensor& x) {
  if (current_sum && bn->is_training()) return sync_batch_norm(bn, x, current_sum);
  return bn.ptr()->forward(x);  // the holder is const here, the module is not
}

}  // namespace rt
