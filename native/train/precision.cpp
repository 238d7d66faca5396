#include "train/precision.h"

#include <ATen/autocast_mode.h>
#include <ATen/ops/_amp_foreach_non_finite_check_and_unscale.h>

#include "common/torch_compat.h"

namespace rt {

namespace {

#if RT_AUTOCAST_BY_DEVICE
void set_autocast(c10::DeviceType device, bool on, at::ScalarType dtype) {
  at::autocast::set_autocast_dtype(device, dtype);
  at::autocast::set_autocast_enabled(device, on);
}
#else
void set_autocast(c10::DeviceType device, bool on, at::ScalarType dtype) {
  if (device == c10::DeviceType::CPU) {
    at::autocast::set_autocast_cpu_dtype(dtype);
    at::autocast::set_cpu_enabled(on);
  } else {
    at::autocast::set_autocast_gpu_dtype(dtype);
    at::autocast::set_enabled(on);
  }
}
#endif

}  // namespace

AutocastScope::AutocastScope(Precision precision, c10::DeviceType device) : device_(device) {
  if (precision == Precision::Float32) return;
  set_autocast(device_, true, precision == Precision::BFloat16 ? at::kBFloat16 : at::kHalf);
  active_ = true;
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
  // Off again, with each device's default dtype back (CUDA: float16, CPU: bfloat16).
  set_autocast(device_, false, device_ == c10::DeviceType::CPU ? at::kBFloat16 : at::kHalf);
  at::autocast::clear_cache();
}

bool LossScaler::unscale_and_check(const std::vector<torch::Tensor>& params) {
  if (!enabled_) return true;
  std::vector<torch::Tensor> grads;
  for (const auto& p : params)
    if (p.grad().defined()) grads.push_back(p.grad());
  if (grads.empty()) return true;
  auto opts = torch::TensorOptions().dtype(torch::kFloat32).device(grads[0].device());
  auto found_inf = torch::zeros({1}, opts);
  auto inv_scale = torch::full({1}, 1.0 / scale_, opts);
  at::_amp_foreach_non_finite_check_and_unscale_(grads, found_inf, inv_scale);
  if (found_inf.item<float>() > 0) {
    scale_ *= 0.5;
    good_steps_ = 0;
    return false;
  }
  if (++good_steps_ >= 2000) {  // GradScaler's growth interval and factor
    scale_ *= 2.0;
    good_steps_ = 0;
  }
  return true;
}

bool all_finite(const torch::Tensor& loss, const std::vector<torch::Tensor>& params) {
  std::vector<torch::Tensor> grads;
  for (const auto& p : params)
    if (p.grad().defined()) grads.push_back(p.grad());
  const auto device = grads.empty() ? loss.device() : grads[0].device();
  auto found_inf = torch::zeros({1}, torch::TensorOptions().dtype(torch::kFloat32).device(device));
  if (!grads.empty() && device.is_cuda()) {
    at::_amp_foreach_non_finite_check_and_unscale_(grads, found_inf, torch::ones({1}, found_inf.options()));
  } else if (!grads.empty()) {
    // libtorch 1.13 has no CPU kernel for the fused check: a sum is NaN or inf when any element is.
    std::vector<torch::Tensor> sums;
    for (const auto& g : grads) sums.push_back(g.sum().to(torch::kFloat32));
    found_inf.add_(torch::isfinite(torch::stack(sums)).logical_not().sum());
  }
  if (loss.defined()) found_inf.add_(torch::isfinite(loss.detach()).logical_not().to(found_inf.options()).sum());
  return found_inf.item<float>() == 0;
}

}  // namespace rt
