#pragma once
// BatchNorm whose batch statistics span every rank's batch, as torch.nn.SyncBatchNorm: while a
// SyncBatchNormScope is open on this thread, a training BatchNorm2d normalises with the mean and variance of the
// whole world's batch and updates its running statistics with them; its backward sums the statistics' gradients
// over the ranks. The models call apply_bn() and never see the process group: the scope brings the sum.
#include <torch/nn/modules/batchnorm.h>
#include <torch/types.h>

#include <functional>
#include <memory>

namespace rt {

// Sums a contiguous tensor over every rank, in place (the process group's all-reduce).
using SumOverRanks = std::function<void(torch::Tensor&)>;

class SyncBatchNormScope {
 public:
  explicit SyncBatchNormScope(SumOverRanks sum);
  ~SyncBatchNormScope();
  SyncBatchNormScope(const SyncBatchNormScope&) = delete;
  SyncBatchNormScope& operator=(const SyncBatchNormScope&) = delete;

 private:
  std::shared_ptr<const SumOverRanks> previous_;
};

// bn(x), or its synchronised form while a scope is open and bn is training.
torch::Tensor apply_bn(const torch::nn::BatchNorm2d& bn, const torch::Tensor& x);

}  // namespace rt
