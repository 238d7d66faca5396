#include "data/augment.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/nn/functional/upsampling.h>
#include <torch/nn/functional/vision.h>

#include <cmath>

#include "common/error.h"
#include "data/tensor_dataset.h"

namespace rt {

namespace F = torch::nn::functional;

AugmentConfig on_device(AugmentConfig config, const torch::Device& device, torch::ScalarType dtype) {
  config.dtype = dtype;
  if (config.mean.defined()) config.mean = config.mean.to(device, dtype);
  if (config.std.defined()) config.std = config.std.to(device, dtype);
  return config;
}

namespace {

torch::Tensor normalise(torch::Tensor x, const AugmentConfig& c) {
  switch (c.norm) {
    case NormKind::PerPixel:
      return x.sub_(c.mean);
    case NormKind::PerChannel:
      return x.sub_(c.mean.view({1, -1, 1, 1})).div_(c.std.view({1, -1, 1, 1}));
    case NormKind::None:
      return x;
  }
  return x;
}

// Zero-pad by `pad` and crop back to H×W at per-image offsets: one gather for the whole batch.
torch::Tensor pad_and_crop(const torch::Tensor& x, int64_t pad, const torch::Tensor& offsets) {
  const int64_t b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3), wp = w + 2 * pad;
  auto padded = torch::constant_pad_nd(x, {pad, pad, pad, pad});
  auto opts = torch::TensorOptions().dtype(torch::kInt64).device(x.device());
  auto rows = offsets.select(1, 0).view({b, 1}) + torch::arange(h, opts).view({1, h});
  auto cols = offsets.select(1, 1).view({b, 1}) + torch::arange(w, opts).view({1, w});
  auto index = (rows.view({b, h, 1}) * wp + cols.view({b, 1, w})).view({b, 1, h * w}).expand({b, c, h * w});
  return padded.flatten(2).gather(2, index).view({b, c, h, w});
}

// torchvision's RandomResizedCrop for a whole batch: a crop box per image (10 tries, else the whole
// image), then one affine grid_sample resizes every box to the output size.
torch::Tensor random_resized_crop(const torch::Tensor& x, const AugmentConfig& c, at::Generator& gen) {
  const int64_t b = x.size(0), h = x.size(2), w = x.size(3);
  const int64_t oh = c.out_height > 0 ? c.out_height : h, ow = c.out_width > 0 ? c.out_width : w;
  constexpr int64_t tries = 10;
  auto area = torch::empty({b, tries}).uniform_(c.scale_min, c.scale_max, gen) * static_cast<double>(h * w);
  auto log_ratio = torch::empty({b, tries}).uniform_(std::log(c.ratio_min), std::log(c.ratio_max), gen);
  auto ratio = log_ratio.exp();
  auto cw = (area * ratio).sqrt().round(), ch = (area / ratio).sqrt().round();
  auto ok = (cw <= w) & (ch <= h) & (cw > 0) & (ch > 0);
  auto first = (ok.to(torch::kInt64) * torch::arange(tries, 0, -1)).argmax(1, true);  // first valid try
  auto any = ok.any(1);
  auto bw = torch::where(any, cw.gather(1, first).squeeze(1),
                         torch::full({b}, static_cast<double>(w), torch::kFloat64).to(cw.dtype()));
  auto bh = torch::where(any, ch.gather(1, first).squeeze(1),
                         torch::full({b}, static_cast<double>(h), torch::kFloat64).to(ch.dtype()));
  auto top = (torch::rand({b}, gen) * (h - bh + 1)).floor();
  auto left = (torch::rand({b}, gen) * (w - bw + 1)).floor();
  auto theta = torch::zeros({b, 2, 3});
  theta.select(1, 0).select(1, 0).copy_(bw / w);
  theta.select(1, 0).select(1, 2).copy_((2 * left + bw) / w - 1);
  theta.select(1, 1).select(1, 1).copy_(bh / h);
  theta.select(1, 1).select(1, 2).copy_((2 * top + bh) / h - 1);
  auto grid = F::affine_grid(theta.to(x.device(), x.scalar_type()), {b, x.size(1), oh, ow}, false);
  return F::grid_sample(
      x, grid, F::GridSampleFuncOptions().mode(torch::kBilinear).padding_mode(torch::kZeros).align_corners(false));
}

}  // namespace

torch::Tensor prepare_train_batch(const torch::Tensor& batch, const AugmentConfig& c, uint64_t seed,
                                  AugmentDraws* draws) {
  torch::NoGradGuard no_grad;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const int64_t b = batch.size(0);
  auto flip = [&](const torch::Tensor& x) {
    auto flipped = (torch::rand({b}, gen) < 0.5).to(x.device()).view({b, 1, 1, 1});
    return torch::where(flipped, x.flip({3}), x);
  };
  auto pad_crop = [&](const torch::Tensor& x) {
    auto offsets = torch::randint(0, 2 * c.pad + 1, {b, 2}, gen, torch::kInt64).to(x.device());
    return pad_and_crop(x, c.pad, offsets);
  };
  torch::Tensor x;
  if (c.auto_augment.kind != AutoAugmentKind::None) {
    // torchvision's order on uint8 images: crop, flip, the policy; then to [0, 1] and normalised. The policy's
    // operations are defined on uint8 pixels: the crop's output is rounded back to them.
    if (batch.scalar_type() != torch::kUInt8)
      throw Error("ERR_DATASET", "TrivialAugment and RandAugment need uint8 images");
    x = batch.to(torch::kFloat32);
    if (c.random_resized_crop) x = random_resized_crop(x, c, gen).round_().clamp_(0, 255);
    if (c.flip) x = flip(x);
    x = auto_augment(x, c.auto_augment, gen, draws != nullptr ? &draws->auto_augment : nullptr);
    x = normalise(x.to(c.dtype).div_(255.0), c);
    if (c.pad > 0) x = pad_crop(x);
  } else {
    x = normalise(to_unit_float(batch, c.dtype), c);  // the paper pads the mean-subtracted image with zeros
    if (c.random_resized_crop) x = random_resized_crop(x, c, gen);
    if (c.pad > 0) x = pad_crop(x);
    if (c.flip) x = flip(x);
  }
  if (c.erase.prob > 0) x = random_erase(x, c.erase, gen, draws != nullptr ? &draws->erase_boxes : nullptr);
  return c.channels_last ? x.contiguous(torch::MemoryFormat::ChannelsLast) : x.contiguous();
}

torch::Tensor prepare_eval_batch(const torch::Tensor& batch, const AugmentConfig& c) {
  torch::NoGradGuard no_grad;
  auto x = normalise(to_unit_float(batch, c.dtype), c);
  const int64_t eh = c.eval_height > 0 ? c.eval_height : c.out_height;
  const int64_t ew = c.eval_width > 0 ? c.eval_width : c.out_width;
  if (c.random_resized_crop && ((eh > 0 && eh != x.size(2)) || (ew > 0 && ew != x.size(3))))
    x = F::interpolate(
        x, F::InterpolateFuncOptions().size(std::vector<int64_t>{eh, ew}).mode(torch::kBilinear).align_corners(false));
  return c.channels_last ? x.contiguous(torch::MemoryFormat::ChannelsLast) : x.contiguous();
}

}  // namespace rt
