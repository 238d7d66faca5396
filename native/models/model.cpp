#include "models/model.h"

#include <torch/nn/module.h>
#include <torch/utils.h>

#include <sstream>

#include "common/error.h"
#include "common/oom.h"
#include "device/cuda.h"
#include "device/runtime.h"

namespace rt {

Model::Model(NetSpec spec) : net_(std::move(spec)) {}

std::unique_lock<std::mutex> Model::acquire(const char* operation) {
  if (training_run_)
    throw Error("ERR_BUSY",
                std::string("cannot ") + operation + ": the model is being trained; wait for the run to end");
  std::unique_lock<std::mutex> lock(mutex_);
  if (training_run_)
    throw Error("ERR_BUSY",
                std::string("cannot ") + operation + ": the model is being trained; wait for the run to end");
  return lock;
}

std::unique_lock<std::mutex> Model::acquire_for_training() {
  bool expected = false;
  if (!training_run_.compare_exchange_strong(expected, true))
    throw Error("ERR_BUSY", "the model is already being trained by another run");
  return std::unique_lock<std::mutex>(mutex_);
}

void Model::to(const std::string& device) {
  const torch::Device d(check_device(device));
  net_->to(d);
  device_ = d;
}

torch::Tensor Model::forward(const torch::Tensor& input, bool force_eval) {
  torch::NoGradGuard no_grad;
  const bool was_training = net_->is_training();
  if (force_eval) net_->eval();
  try {
    torch::Tensor out = net_->forward(input.to(device_, net_->dtype()));
    if (force_eval && was_training) net_->train();
    return out.to(torch::kCPU, torch::kFloat32).contiguous();
  } catch (const std::exception& e) {
    if (force_eval && was_training) net_->train();
    // The model is unchanged: give the cached blocks back so that a smaller batch can go on.
    if (is_out_of_memory(e)) release_cuda_cache_after_oom();
    throw;
  }
}

std::vector<NamedTensor> Model::state() const {
  std::vector<NamedTensor> out;
  // Per module, parameters before buffers: the order of PyTorch's state_dict().
  for (const auto& item : net_->named_modules()) {
    const std::string prefix = item.key().empty() ? "" : item.key() + ".";
    for (const auto& p : item.value()->named_parameters(/*recurse=*/false))
      out.push_back({prefix + p.key(), p.value(), true});
    for (const auto& b : item.value()->named_buffers(/*recurse=*/false))
      out.push_back({prefix + b.key(), b.value(), false});
  }
  return out;
}

std::vector<NamedTensor> Model::state_on_cpu() const {
  std::vector<NamedTensor> out = state();
  for (auto& entry : out) entry.tensor = entry.tensor.detach().to(torch::kCPU).contiguous().clone();
  return out;
}

void Model::load_state(const std::vector<std::pair<std::string, torch::Tensor>>& entries) {
  std::map<std::string, torch::Tensor> live;
  for (auto& entry : state()) live[entry.name] = entry.tensor;
  std::ostringstream problems;
  for (const auto& [name, value] : entries) {
    auto it = live.find(name);
    if (it == live.end()) {
      problems << "\n  unexpected " << name;
    } else if (it->second.sizes() != value.sizes()) {
      problems << "\n  " << name << ": shape " << value.sizes() << " in the file, " << it->second.sizes()
               << " in the model";
    }
  }
  if (!problems.str().empty()) throw Error("ERR_STATE", "state does not fit the model:" + problems.str());
  torch::NoGradGuard no_grad;
  for (const auto& [name, value] : entries) {
    torch::Tensor& target = live[name];
    target.copy_(value.to(target.device(), target.scalar_type()));
  }
}

int64_t Model::set_requires_grad(const std::vector<std::string>& prefixes, bool on) {
  int64_t matched = 0;
  for (auto& p : net_->named_parameters()) {
    for (const auto& prefix : prefixes) {
      if (p.key() == prefix || p.key().rfind(prefix + ".", 0) == 0) {
        p.value().set_requires_grad(on);
        ++matched;
        break;
      }
    }
  }
  return matched;
}

}  // namespace rt
