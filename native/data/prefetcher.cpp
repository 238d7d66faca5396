#include "data/prefetcher.h"

#include <ATen/Parallel.h>

#include <chrono>

#include "common/error.h"

namespace rt {

Prefetcher::Prefetcher(std::shared_ptr<BatchSource> source, AugmentConfig augment, torch::Device device, uint64_t seed,
                       int64_t first, int64_t end, size_t depth)
    : source_(std::move(source)),
      augment_(std::move(augment)),
      device_(device),
      seed_(seed),
      first_(first),
      end_(end),
      depth_(depth),
      next_(first) {
  if (depth_ > 0) thread_ = std::thread([this] { produce(); });
}

Prefetcher::~Prefetcher() {
  stop();
  if (thread_.joinable()) thread_.join();
}

void Prefetcher::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  source_->cancel();
  changed_.notify_all();
}

PreparedBatch Prefetcher::prepare(int64_t it) {
  const int64_t per_epoch = source_->batches_per_epoch();
  const auto drawn = std::chrono::steady_clock::now();
  RawBatch raw = source_->get(it / per_epoch, it % per_epoch);
  // Host batches bound for a GPU go through pinned memory, so the copy below really is asynchronous.
  if (device_.is_cuda() && raw.images.is_cpu()) {
    raw.images = raw.images.pin_memory();
    raw.labels = raw.labels.pin_memory();
  }
  PreparedBatch batch;
  const torch::Tensor images = raw.images.to(device_, /*non_blocking=*/true);
  const auto gathered = std::chrono::steady_clock::now();
  batch.x = prepare_train_batch(images, augment_, derive_seed(seed_, kAugment, static_cast<uint64_t>(it)));
  gather_seconds_ = gather_seconds_ + std::chrono::duration<double>(gathered - drawn).count();
  augment_seconds_ =
      augment_seconds_ + std::chrono::duration<double>(std::chrono::steady_clock::now() - gathered).count();
  batch.y = raw.labels.to(device_, torch::kInt64, /*non_blocking=*/true);
  batch.iteration = it;
  return batch;
}

void Prefetcher::produce() {
  at::init_num_threads();
  try {
    for (int64_t it = first_; it < end_; ++it) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        changed_.wait(lock, [&] { return stopping_ || ready_.size() < depth_; });
        if (stopping_) break;
      }
      PreparedBatch batch = prepare(it);
      std::lock_guard<std::mutex> lock(mutex_);
      ready_.push_back(std::move(batch));
      changed_.notify_all();
    }
  } catch (...) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!stopping_) error_ = std::current_exception();
  }
  std::lock_guard<std::mutex> lock(mutex_);
  finished_ = true;
  changed_.notify_all();
}

PreparedBatch Prefetcher::next() {
  if (depth_ == 0) {  // on the caller's thread
    if (next_ >= end_ || stopping_) throw Error("ERR_ABORTED", "no more batches");
    return prepare(next_++);
  }
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [&] { return !ready_.empty() || finished_ || error_; });
  if (!ready_.empty()) {
    PreparedBatch b = std::move(ready_.front());
    ready_.pop_front();
    changed_.notify_all();
    return b;
  }
  if (error_) std::rethrow_exception(error_);
  throw Error("ERR_ABORTED", "no more batches");
}

}  // namespace rt
