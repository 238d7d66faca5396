#include "train/metrics.h"

#include <torch/nn/functional/loss.h>

#include <limits>

#include "common/error.h"

namespace rt {

EvalMetrics evaluate(ResNet& net, const TensorDataset& data, const AugmentConfig& train_augment, int64_t batch_size,
                     const torch::Device& device, const std::string& split, const std::atomic<bool>* cancel,
                     const EvalShard* shard) {
  torch::NoGradGuard no_grad;
  const AugmentConfig augment = on_device(train_augment, device, net->dtype());
  const bool was_training = net->is_training();
  net->eval();
  const int64_t k = data.num_classes, n = data.size();
  // This rank's images: all of them, or every world-th from its rank on.
  const bool sharded = shard != nullptr && shard->world > 1;
  const auto mine =
      sharded ? torch::arange(shard->rank, n, shard->world, torch::kInt64).to(data.images.device()) : torch::Tensor();
  const int64_t local = sharded ? mine.size(0) : n;
  auto confusion = torch::zeros({k * k}, torch::TensorOptions().dtype(torch::kInt64).device(device));
  auto loss_sum = torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat64).device(device));
  auto top5_hits = torch::zeros({}, torch::TensorOptions().dtype(torch::kInt64).device(device));
  try {
    for (int64_t start = 0; start < local; start += batch_size) {
      if (cancel && cancel->load()) throw Error("ERR_ABORTED", "evaluation cancelled");
      const int64_t count = std::min(batch_size, local - start);
      auto idx = sharded ? mine.narrow(0, start, count) : torch::Tensor();
      auto images = sharded ? data.images.index_select(0, idx) : data.images.narrow(0, start, count);
      auto x = prepare_eval_batch(images.to(device, /*non_blocking=*/true), augment);
      auto y = (sharded ? data.labels.index_select(0, idx) : data.labels.narrow(0, start, count)).to(device, true);
      auto logits = net->forward(x).to(torch::kFloat32);
      loss_sum += torch::nn::functional::cross_entropy(
                      logits, y, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                      .to(torch::kFloat64);
      auto pred = logits.argmax(1);
      confusion += torch::bincount(y * k + pred, {}, k * k);
      auto top = std::get<1>(logits.topk(std::min<int64_t>(5, k), 1));
      top5_hits += (top == y.unsqueeze(1)).any(1).sum();
    }
  } catch (...) {
    if (was_training) net->train();
    throw;
  }
  if (was_training) net->train();
  if (sharded) {
    // The ranks' sums in one all-reduce (counts stay exact in float64).
    auto sums =
        torch::cat({loss_sum.reshape({1}), top5_hits.to(torch::kFloat64).reshape({1}), confusion.to(torch::kFloat64)})
            .cpu()
            .contiguous();
    shard->sum(sums);
    loss_sum = sums[0];
    top5_hits = sums[1].to(torch::kInt64);
    confusion = sums.narrow(0, 2, k * k).to(torch::kInt64);
  }
  EvalMetrics m;
  m.split = split;
  m.count = n;
  m.num_classes = k;
  auto conf = confusion.cpu();
  m.confusion.assign(conf.data_ptr<int64_t>(), conf.data_ptr<int64_t>() + k * k);
  const double total = static_cast<double>(std::max<int64_t>(n, 1));
  m.loss = loss_sum.item<double>() / total;
  auto correct = conf.view({k, k}).diagonal();
  m.top1_error = 1.0 - correct.sum().item<double>() / total;
  m.top5_error = 1.0 - static_cast<double>(top5_hits.item<int64_t>()) / total;
  auto per_class = conf.view({k, k}).sum(1);
  for (int64_t c = 0; c < k; ++c) {
    const int64_t seen = per_class[c].item<int64_t>();
    m.per_class_accuracy.push_back(seen > 0 ? static_cast<double>(correct[c].item<int64_t>()) / seen
                                            : std::numeric_limits<double>::quiet_NaN());
  }
  return m;
}

void TrainMeter::add(const torch::Tensor& logits, const torch::Tensor& labels, const torch::Tensor& loss) {
  auto wrong = (logits.argmax(1) != labels).sum();
  auto l = loss.detach().to(torch::kFloat64) * labels.size(0);
  if (!loss_sum_.defined()) {
    loss_sum_ = l;
    wrong_sum_ = wrong;
  } else {
    loss_sum_ = loss_sum_ + l;
    wrong_sum_ = wrong_sum_ + wrong;
  }
  images_ += labels.size(0);
}

TrainMeter::Window TrainMeter::take() {
  Window w;
  if (images_ > 0) {
    w.images = images_;
    w.loss = loss_sum_.item<double>() / images_;
    w.error = static_cast<double>(wrong_sum_.item<int64_t>()) / images_;
  }
  loss_sum_ = torch::Tensor();
  wrong_sum_ = torch::Tensor();
  images_ = 0;
  return w;
}

}  // namespace rt

namespace rt {

MeterSums TrainMeter::peek() const {
  MeterSums s;
  s.images = images_;
  if (images_ > 0) {
    s.loss_sum = loss_sum_.item<double>();
    s.wrong = wrong_sum_.item<int64_t>();
  }
  return s;
}

void TrainMeter::restore(const MeterSums& sums) {
  images_ = sums.images;
  if (sums.images > 0) {
    loss_sum_ = torch::tensor(sums.loss_sum, torch::kFloat64);
    wrong_sum_ = torch::tensor(sums.wrong, torch::kInt64);
  } else {
    loss_sum_ = torch::Tensor();
    wrong_sum_ = torch::Tensor();
  }
}

}  // namespace rt
