#include "train/graphed_step.h"

#include <torch/nn/functional/loss.h>

#include "common/error.h"

#ifdef RESNET_WITH_CUDA
#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>

#include <vector>
#endif

namespace rt {

#ifdef RESNET_WITH_CUDA

namespace {
// After a capture failed midway: ends the stream's (invalidated) capture so the stream and the process go on,
// and returns the graph's memory pool to the allocator.
void abandon_capture(const c10::cuda::CUDAStream& stream, at::cuda::CUDAGraph& graph) {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing(stream.stream(), &status) == cudaSuccess && status != cudaStreamCaptureStatusNone) {
    cudaGraph_t partial = nullptr;
    cudaStreamEndCapture(stream.stream(), &partial);
    if (partial != nullptr) cudaGraphDestroy(partial);
  }
  (void)cudaGetLastError();
  c10::cuda::CUDACachingAllocator::endAllocateToPool(stream.device_index(), graph.pool());
  c10::cuda::CUDACachingAllocator::releasePool(stream.device_index(), graph.pool());
}
}  // namespace

struct GraphedStep::State {
  at::cuda::CUDAGraph graph;
  torch::Tensor x, y, lr, logits, loss;
};

GraphedStep::GraphedStep(ResNet& net, Optimizer& optimizer, double label_smoothing, const torch::Tensor& x,
                         const torch::Tensor& y, double lr)
    : state_(std::make_unique<State>()) {
  namespace F = torch::nn::functional;
  if (!x.is_cuda()) throw invalid("a CUDA graph needs the model on a CUDA device");
  if (!optimizer.is_sgd()) throw invalid("a CUDA graph step supports SGD (AdamW's bias correction changes every step)");
  auto& s = *state_;
  s.x = x.clone();
  s.y = y.clone();
  s.lr = torch::full({}, lr, x.options().dtype(torch::kFloat32));
  auto current = c10::cuda::getCurrentCUDAStream();
  auto side = c10::cuda::getStreamFromPool();
  at::cuda::CUDAEvent ready;
  ready.record(current);
  ready.block(side);
  auto forward_backward = [&] {
    s.logits = net->forward(s.x);
    s.loss = F::cross_entropy(s.logits, s.y, F::CrossEntropyFuncOptions().label_smoothing(label_smoothing));
    s.loss.backward();
  };
  {
    c10::cuda::CUDAStreamGuard guard(side);
    // Warm-up on the capture's stream, as PyTorch's CUDA-graph notes require: cuDNN (9.x) and the autograd
    // engine set up per-stream state on first use, which is illegal during a capture (cuDNN 9.19 reported
    // CUDNN_STATUS_BAD_PARAM_STREAM_MISMATCH without it). Forward and backward only, the batch-norm buffers
    // put back after, so the weights and statistics are the eager run's.
    std::vector<torch::Tensor> saved;
    for (const auto& b : net->buffers()) saved.push_back(b.clone());
    for (int i = 0; i < 2; ++i) forward_backward();
    {
      torch::NoGradGuard no_grad;
      size_t i = 0;
      for (auto& b : net->buffers()) b.copy_(saved[i++]);
    }
    optimizer.zero_grad();  // the captured backward allocates the gradients from the graph's pool
    try {
      s.graph.capture_begin();
      forward_backward();
      optimizer.step_sgd_tensor_lr(s.lr);
      s.graph.capture_end();
    } catch (const std::exception& e) {
      abandon_capture(side, s.graph);
      optimizer.zero_grad();
      throw Error("ERR_DEVICE", std::string("capturing the training step as a CUDA graph failed, so no step ran: ") +
                                    e.what() + " (train with cudaGraph: false)");
    }
  }
  at::cuda::CUDAEvent captured;
  captured.record(side);
  captured.block(current);
  s.graph.replay();  // capture records without running: this is the step itself
}

GraphedStep::~GraphedStep() = default;

std::pair<torch::Tensor, torch::Tensor> GraphedStep::step(const torch::Tensor& x, const torch::Tensor& y, double lr) {
  auto& s = *state_;
  if (x.sizes() != s.x.sizes()) throw invalid("a CUDA graph replays one batch shape; use dropLast");
  s.x.copy_(x, /*non_blocking=*/true);
  s.y.copy_(y, true);
  s.lr.fill_(lr);
  s.graph.replay();
  return {s.logits, s.loss};
}

std::pair<torch::Tensor, torch::Tensor> GraphedStep::outputs() const { return {state_->logits, state_->loss}; }

#else

struct GraphedStep::State {};

std::pair<torch::Tensor, torch::Tensor> GraphedStep::outputs() const { return {}; }

GraphedStep::GraphedStep(ResNet&, Optimizer&, double, const torch::Tensor&, const torch::Tensor&, double) {
  throw Error("ERR_DEVICE", "CUDA graphs need a CUDA build of libtorch");
}

GraphedStep::~GraphedStep() = default;

std::pair<torch::Tensor, torch::Tensor> GraphedStep::step(const torch::Tensor&, const torch::Tensor&, double) {
  throw Error("ERR_DEVICE", "CUDA graphs need a CUDA build of libtorch");
}

#endif

}  // namespace rt
