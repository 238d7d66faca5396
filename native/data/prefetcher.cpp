#include "data/prefetcher.h"

#include <ATen/Parallel.h>

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
      depth_(std::max<size_t>(1, depth)) {
  thread_ = std::thread([this] { produce(); });
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

void Prefetcher::produce() {
  at::init_num_threads();
  try {
    const int64_t per_epoch = source_->batches_per_epoch();
    for (int64_t it = first_; it < end_; ++it) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        changed_.wait(lock, [&] { return stopping_ || ready_.size() < depth_; });
        if (stopping_) break;
      }
      RawBatch raw = source_->get(it / per_epoch, it % per_epoch);
      // Host batches bound for a GPU go through pinned memory, so the copy below really is asynchronous.
      if (device_.is_cuda() && raw.images.is_cpu()) {
        raw.images = raw.images.pin_memory();
        raw.labels = raw.labels.pin_memory();
      }
      PreparedBatch batch;
      batch.x = prepare_train_batch(raw.images.to(device_, /*non_blocking=*/true), augment_,
                                    derive_seed(seed_, kAugment, static_cast<uint64_t>(it)));
      batch.y = raw.labels.to(device_, torch::kInt64, /*non_blocking=*/true);
      batch.iteration = it;
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
