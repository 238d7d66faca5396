#pragma once
// Where training batches come from. A source is addressed by (epoch, index), so that a run resumed at
// iteration k draws exactly the batches the uninterrupted run would have drawn.
#include <torch/types.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>

#include "data/tensor_dataset.h"

namespace rt {

struct RawBatch {
  torch::Tensor images;  // B×C×H×W, uint8 or float32
  torch::Tensor labels;  // B, int64
};

class BatchSource {
 public:
  virtual ~BatchSource() = default;
  virtual int64_t batches_per_epoch() const = 0;
  virtual RawBatch get(int64_t epoch, int64_t index) = 0;
  virtual void cancel() {}
};

// Seeds derived from the run's seed and a purpose, so shuffling, augmentation and init never share a stream.
uint64_t derive_seed(uint64_t seed, uint64_t purpose, uint64_t counter);
enum SeedPurpose : uint64_t { kShuffle = 1, kAugment = 2, kStream = 3, kRank = 4, kDropPath = 5, kMix = 6 };

// The images one rank draws an epoch from `n`: DistributedSampler's ceil(n / world); with repeated augmentation
// (repeats > 1) and round > 0, timm's RepeatAugSampler's selected_round: floor(n / round) · round / world when
// n ≥ round (lib/datasets/epochs.ts rankShare is the same rule).
int64_t rank_share(int64_t n, int64_t world_size, int64_t repeats, int64_t round);

// An in-memory dataset (on the CPU or on the training device), reshuffled each epoch from the seed. With a world
// of several ranks it is sharded as PyTorch's DistributedSampler does: every rank draws the same permutation,
// padded to a multiple of the world with its own first indices, and takes every world-th index from its rank on.
class InMemorySource : public BatchSource {
 public:
  // repeats > 1: repeated augmentation (timm's RepeatAugSampler): each epoch's order holds every image `repeats`
  // times in a row before the ranks' strided shares are cut, so the copies land on different ranks; a rank draws
  // rank_share() images an epoch.
  InMemorySource(TensorDataset data, int64_t batch_size, bool shuffle, bool drop_last, uint64_t seed, int64_t rank = 0,
                 int64_t world_size = 1, int64_t repeats = 1, int64_t repeats_round = 0);
  int64_t batches_per_epoch() const override;
  RawBatch get(int64_t epoch, int64_t index) override;
  // The indices this rank draws in `epoch`, in order (its share, padded as DistributedSampler pads).
  torch::Tensor epoch_order(int64_t epoch) const;

 private:
  int64_t shard_size() const;  // the images one rank sees per epoch

  TensorDataset data_;
  int64_t batch_size_;
  int64_t rank_, world_size_, repeats_, repeats_round_;
  bool shuffle_, drop_last_;
  uint64_t seed_;
  int64_t cached_epoch_ = -1;
  torch::Tensor order_;
};

// Batches pushed from JS (streamed image folders), in the order the trainer asks for them.
class BatchQueue : public BatchSource {
 public:
  BatchQueue(int64_t capacity, int64_t batches_per_epoch);
  int64_t batches_per_epoch() const override { return batches_per_epoch_; }
  // Blocks while the queue is empty; throws ERR_ABORTED after cancel(), ERR_DATASET when the producer
  // closed the queue early or sent a batch out of order.
  RawBatch get(int64_t epoch, int64_t index) override;
  void cancel() override;

  // Producer side: false while full (the JS side waits for space), throws once closed or cancelled.
  bool try_push(int64_t epoch, int64_t index, RawBatch batch);
  void close(const std::string& error = "");
  size_t size();
  void set_space_callback(std::function<void()> on_space);

 private:
  struct Item {
    int64_t epoch, index;
    RawBatch batch;
  };
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<Item> items_;
  size_t capacity_;
  int64_t batches_per_epoch_;
  bool closed_ = false, cancelled_ = false;
  std::string error_;
  std::function<void()> on_space_;
};

}  // namespace rt
