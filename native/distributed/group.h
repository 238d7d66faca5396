#pragma once
// Data-parallel training across processes on PyTorch's own c10d, as DistributedDataParallel runs it: a TCPStore
// rendezvous, a process group (Gloo for CPU tensors; NCCL for CUDA ones where the build has it), parameters and
// buffers broadcast from rank 0, and c10d's Reducer, which all-reduces the gradients in buckets while backward is
// still running and averages them over the world. It builds on libtorch 1.x's c10d API and on 2.x's (where a
// ProcessGroup holds a Backend per device type). c10d's headers stay in group.cpp (RESNET_WITH_C10D): the rest
// of the core sees this small interface only.
#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace rt {

enum class DistBackend { Gloo, Nccl };

struct DistConfig {
  bool join = false;                        // a group of world_size (1 too, when asked for)
  DistBackend backend = DistBackend::Gloo;  // for the model's tensors; CPU tensors always go through Gloo
  int64_t rank = 0;
  int64_t world_size = 1;
  std::string master_addr;
  int64_t master_port = 0;
  int64_t timeout_ms = 0;    // rendezvous and every collective
  bool agent_store = false;  // torchrun's agent serves the store at master_addr:master_port: every rank is a client
  std::string store_prefix;  // this run's keys in the store (torchrun's restart attempt), empty for none
  // What must agree across ranks (spec, options, data length, ...), compared by key at the rendezvous.
  std::vector<std::pair<std::string, std::string>> fingerprint;
};

// Whether this build has c10d with Gloo, and NCCL (libtorch 2.x built with it, on CUDA).
bool c10d_available();
bool nccl_available();

class DistGroup {
 public:
  // Joins the group: blocks until every rank arrived and agreed on the fingerprint, or fails naming the rank.
  static std::unique_ptr<DistGroup> join(const DistConfig& config);
  ~DistGroup();
  DistGroup(const DistGroup&) = delete;
  DistGroup& operator=(const DistGroup&) = delete;

  int64_t rank() const;
  int64_t world_size() const;
  // Rank 0's values into every rank's tensors, in place (one coalesced broadcast).
  void broadcast(const std::vector<torch::Tensor>& tensors);
  // The gradients of `params` (the trainable ones, in registration order) will be averaged over the world.
  void attach(const std::vector<torch::Tensor>& params);
  // DDP's calls around an iteration: before the forward, and between the forward and the backward. A backward
  // without `sync` (DDP's no_sync, for gradient accumulation) only accumulates: the next synced one reduces all.
  void before_forward();
  void before_backward(bool sync = true);
  // Sums over the world, in place (a contiguous CPU or device tensor).
  void all_reduce_sum(torch::Tensor& tensor);
  // Records that this rank reached `iteration`, so that a failure can tell which rank fell behind.
  void progress(int64_t iteration);
  // Why a collective failed with `what`: the ranks behind the others (the one that died or hangs), if any.
  std::string explain_failure(const std::string& what);

 private:
  struct Impl;
  explicit DistGroup(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace rt
