#include "data/batch_source.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <string>

#include "common/error.h"

namespace rt {

uint64_t derive_seed(uint64_t seed, uint64_t purpose, uint64_t counter) {
  // splitmix64 over the three parts: nearby inputs give unrelated seeds.
  uint64_t z = seed ^ (purpose * 0x9E3779B97F4A7C15ULL) ^ (counter * 0xBF58476D1CE4E5B9ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

InMemorySource::InMemorySource(TensorDataset data, int64_t batch_size, bool shuffle, bool drop_last, uint64_t seed,
                               int64_t rank, int64_t world_size, int64_t repeats, int64_t repeats_round)
    : data_(std::move(data)),
      batch_size_(batch_size),
      rank_(rank),
      world_size_(world_size),
      repeats_(repeats),
      repeats_round_(repeats_round),
      shuffle_(shuffle),
      drop_last_(drop_last),
      seed_(seed) {
  if (world_size_ < 1 || rank_ < 0 || rank_ >= world_size_)
    throw invalid("rank " + std::to_string(rank_) + " is outside a world of " + std::to_string(world_size_));
  if (repeats_ < 1) throw invalid("repeats must be at least 1");
  if (repeats_round_ < 0) throw invalid("repeatsRound must be at least 0");
  if (batch_size_ < 1 || batch_size_ > shard_size())
    throw invalid("batch size " + std::to_string(batch_size_) + " does not fit a dataset of " +
                  std::to_string(data_.size()));
}

int64_t rank_share(int64_t n, int64_t world_size, int64_t repeats, int64_t round) {
  const int64_t padded = (n + world_size - 1) / world_size;
  if (repeats <= 1 || round <= 0 || n < round) return padded;
  return std::min(n / round * round / world_size, (n * repeats + world_size - 1) / world_size);
}

int64_t InMemorySource::shard_size() const { return rank_share(data_.size(), world_size_, repeats_, repeats_round_); }

int64_t InMemorySource::batches_per_epoch() const {
  const int64_t n = shard_size();
  return drop_last_ ? n / batch_size_ : (n + batch_size_ - 1) / batch_size_;
}

torch::Tensor InMemorySource::epoch_order(int64_t epoch) const {
  torch::Tensor order;
  if (shuffle_) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(derive_seed(seed_, kShuffle, static_cast<uint64_t>(epoch)));
    order = torch::randperm(data_.size(), gen, torch::kInt64);
  } else {
    order = torch::arange(data_.size(), torch::kInt64);
  }
  if (repeats_ > 1) order = order.repeat_interleave(repeats_);  // [a, a, a, b, b, b, ...]
  if (world_size_ > 1 || repeats_ > 1) {
    // Padded with its own start to a multiple of the world, then every world-th from this rank's position.
    const int64_t n = order.size(0), total = (n + world_size_ - 1) / world_size_ * world_size_;
    if (total > n) order = order.repeat({(total + n - 1) / n}).narrow(0, 0, total);
    order = order.slice(0, rank_, total, world_size_).narrow(0, 0, shard_size()).contiguous();
  }
  return order;
}

RawBatch InMemorySource::get(int64_t epoch, int64_t index) {
  if (epoch != cached_epoch_) {
    order_ = epoch_order(epoch).to(data_.images.device());
    cached_epoch_ = epoch;
  }
  const int64_t start = index * batch_size_;
  const int64_t count = std::min(batch_size_, order_.size(0) - start);
  auto idx = order_.narrow(0, start, count);
  return RawBatch{data_.images.index_select(0, idx), data_.labels.index_select(0, idx)};
}

BatchQueue::BatchQueue(int64_t capacity, int64_t batches_per_epoch)
    : capacity_(static_cast<size_t>(std::max<int64_t>(1, capacity))), batches_per_epoch_(batches_per_epoch) {}

RawBatch BatchQueue::get(int64_t epoch, int64_t index) {
  std::unique_lock<std::mutex> lock(mutex_);
  ready_.wait(lock, [&] { return cancelled_ || closed_ || !items_.empty(); });
  if (cancelled_) throw Error("ERR_ABORTED", "the batch stream was cancelled");
  if (items_.empty()) {
    throw Error("ERR_DATASET", error_.empty() ? "the batch stream ended before epoch " + std::to_string(epoch) +
                                                    " batch " + std::to_string(index)
                                              : error_);
  }
  Item item = std::move(items_.front());
  items_.pop_front();
  auto on_space = on_space_;
  lock.unlock();
  if (on_space) on_space();
  if (item.epoch != epoch || item.index != index)
    throw Error("ERR_DATASET", "the batch stream sent epoch " + std::to_string(item.epoch) + " batch " +
                                   std::to_string(item.index) + " where epoch " + std::to_string(epoch) + " batch " +
                                   std::to_string(index) + " was due");
  return std::move(item.batch);
}

void BatchQueue::cancel() {
  std::lock_guard<std::mutex> lock(mutex_);
  cancelled_ = true;
  ready_.notify_all();
}

bool BatchQueue::try_push(int64_t epoch, int64_t index, RawBatch batch) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (cancelled_ || closed_) throw Error("ERR_ABORTED", "the batch stream is closed");
  if (items_.size() >= capacity_) return false;
  items_.push_back(Item{epoch, index, std::move(batch)});
  ready_.notify_all();
  return true;
}

void BatchQueue::close(const std::string& error) {
  std::lock_guard<std::mutex> lock(mutex_);
  closed_ = true;
  error_ = error;
  ready_.notify_all();
}

size_t BatchQueue::size() {
  std::lock_guard<std::mutex> lock(mutex_);
  return items_.size();
}

void BatchQueue::set_space_callback(std::function<void()> on_space) {
  std::lock_guard<std::mutex> lock(mutex_);
  on_space_ = std::move(on_space);
}

}  // namespace rt
