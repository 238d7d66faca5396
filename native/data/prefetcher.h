#pragma once
// Prepares batch k+1 (draw, copy to the device, augment) on its own thread while batch k trains.
#include <torch/types.h>

#include <condition_variable>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>

#include "data/batch_source.h"
#include "train/augment.h"

namespace rt {

struct PreparedBatch {
  torch::Tensor x;  // float, augmented and normalised, on the device
  torch::Tensor y;  // int64 labels, on the device
  int64_t iteration = 0;
};

class Prefetcher {
 public:
  // Produces the batches of iterations [first, end): iteration i is batch i mod B of epoch i div B. `augment` is
  // already on `device` (on_device).
  Prefetcher(std::shared_ptr<BatchSource> source, AugmentConfig augment, torch::Device device, uint64_t seed,
             int64_t first, int64_t end, size_t depth);
  ~Prefetcher();
  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;

  PreparedBatch next();  // blocks; rethrows what the producer threw
  void stop();

 private:
  void produce();

  std::shared_ptr<BatchSource> source_;
  AugmentConfig augment_;
  torch::Device device_;
  uint64_t seed_;
  int64_t first_, end_;
  size_t depth_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<PreparedBatch> ready_;
  std::exception_ptr error_;
  bool stopping_ = false, finished_ = false;
  std::thread thread_;
};

}  // namespace rt
