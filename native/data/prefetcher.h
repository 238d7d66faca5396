#pragma once
// Prepares batch k+1 (draw, copy to the device, augment) on its own thread while batch k trains; with depth 0, on
// the caller's thread when it asks for it (a CPU run: the step's OpenMP team already has every core, and a second
// team beside it makes both wait at their barriers).
#include <torch/types.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>

#include "data/augment.h"
#include "data/batch_source.h"

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
  // Seconds the producer spent drawing batches (and copying them to the device), and preparing them.
  double gather_seconds() const { return gather_seconds_; }
  double augment_seconds() const { return augment_seconds_; }

 private:
  void produce();
  PreparedBatch prepare(int64_t iteration);

  std::shared_ptr<BatchSource> source_;
  AugmentConfig augment_;
  torch::Device device_;
  uint64_t seed_;
  int64_t first_, end_;
  size_t depth_;
  int64_t next_;  // depth 0: the next iteration to prepare
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<PreparedBatch> ready_;
  std::exception_ptr error_;
  bool stopping_ = false, finished_ = false;
  std::atomic<double> gather_seconds_{0}, augment_seconds_{0};
  std::thread thread_;
};

}  // namespace rt
