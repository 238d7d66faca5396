#include "data/auto_augment.h"

#include <torch/nn/functional/conv.h>
#include <torch/nn/functional/vision.h>

#include <array>
#include <cmath>
#include <vector>

namespace rt {

namespace F = torch::nn::functional;

namespace {

enum Op : int64_t {
  kIdentity,
  kShearX,
  kShearY,
  kTranslateX,
  kTranslateY,
  kRotate,
  kBrightness,
  kColor,
  kContrast,
  kSharpness,
  kPosterize,
  kSolarize,
  kAutoContrast,
  kEqualize,
};
constexpr std::array<const char*, kAutoAugmentOps> kOpNames = {
    "Identity", "ShearX",   "ShearY",    "TranslateX", "TranslateY", "Rotate",       "Brightness",
    "Color",    "Contrast", "Sharpness", "Posterize",  "Solarize",   "AutoContrast", "Equalize"};

// CPython's math.radians / math.degrees, bit for bit.
constexpr double kPi = 3.14159265358979323846;
constexpr double kDegToRad = kPi / 180.0, kRadToDeg = 180.0 / kPi;

// torchvision's magnitude bins of `op` (_augmentation_space of TrivialAugmentWide or RandAugment); empty for the
// operations without a magnitude. torchvision takes them from a float32 torch.linspace, whose last bits depend on
// the PyTorch version and the CPU's vector width (2.15 gives TrivialAugment's 16-pixel translation bin as
// 15.999999, which int() makes 15; 1.13 gives 16). Here each is the exact value rounded once to float32: the same
// bins on every libtorch and CPU.
std::vector<double> magnitude_bins(int64_t op, AutoAugmentKind kind, int64_t bins, int64_t h, int64_t w) {
  const bool wide = kind == AutoAugmentKind::TrivialAugmentWide;
  auto lin = [&](double start, double end) {
    std::vector<double> v(static_cast<size_t>(bins));
    for (int64_t i = 0; i < bins; ++i)
      v[static_cast<size_t>(i)] =
          static_cast<float>(start + (end - start) * static_cast<double>(i) / static_cast<double>(bins - 1));
    return v;
  };
  switch (op) {
    case kShearX:
    case kShearY:
      return lin(0.0, wide ? 0.99 : 0.3);
    case kTranslateX:
      return lin(0.0, wide ? 32.0 : 150.0 / 331.0 * static_cast<double>(w));
    case kTranslateY:
      return lin(0.0, wide ? 32.0 : 150.0 / 331.0 * static_cast<double>(h));
    case kRotate:
      return lin(0.0, wide ? 135.0 : 30.0);
    case kBrightness:
    case kColor:
    case kContrast:
    case kSharpness:
      return lin(0.0, wide ? 0.99 : 0.9);
    case kPosterize: {  // 8 - round(i / ((bins - 1) / 6)), 4 for RandAugment
      std::vector<double> v(static_cast<size_t>(bins));
      for (int64_t i = 0; i < bins; ++i)
        v[static_cast<size_t>(i)] =
            8 - std::nearbyint(static_cast<double>(i) / (static_cast<double>(bins - 1) / (wide ? 6.0 : 4.0)));
      return v;
    }
    case kSolarize:
      return lin(255.0, 0.0);
    default:
      return {};
  }
}

bool is_signed(int64_t op) { return op >= kShearX && op <= kSharpness; }

// torchvision's _get_inverse_affine_matrix (inverted=True), in the same order of double operations.
std::array<double, 6> inverse_affine(double cx, double cy, double angle, double tx, double ty, double shear_x,
                                     double shear_y) {
  const double rot = angle * kDegToRad, sx = shear_x * kDegToRad, sy = shear_y * kDegToRad;
  const double a = std::cos(rot - sy) / std::cos(sy);
  const double b = -std::cos(rot - sy) * std::tan(sx) / std::cos(sy) - std::sin(rot);
  const double c = std::sin(rot - sy) / std::cos(sy);
  const double d = -std::sin(rot - sy) * std::tan(sx) / std::cos(sy) + std::cos(rot);
  std::array<double, 6> m = {d, -b, 0.0, -c, a, 0.0};  // scale 1
  m[2] += m[0] * (-cx - tx) + m[1] * (-cy - ty);
  m[5] += m[3] * (-cx - tx) + m[4] * (-cy - ty);
  m[2] += cx;
  m[5] += cy;
  return m;
}

// torchvision's _gen_affine_grid for one image (float32, on the CPU).
torch::Tensor affine_grid(const std::array<double, 6>& m, int64_t h, int64_t w) {
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat32);
  auto theta =
      torch::tensor(std::vector<double>(m.begin(), m.end()), torch::kFloat64).to(torch::kFloat32).view({1, 2, 3});
  constexpr double d = 0.5;
  auto base = torch::empty({1, h, w, 3}, f32);
  base.select(3, 0).copy_(
      torch::linspace(-static_cast<double>(w) * 0.5 + d, static_cast<double>(w) * 0.5 + d - 1, w, f32));
  base.select(3, 1).copy_(
      torch::linspace(-static_cast<double>(h) * 0.5 + d, static_cast<double>(h) * 0.5 + d - 1, h, f32).unsqueeze(-1));
  base.select(3, 2).fill_(1);
  auto rescaled =
      theta.transpose(1, 2) / torch::tensor({0.5 * static_cast<double>(w), 0.5 * static_cast<double>(h)}, f32);
  return base.view({1, h * w, 3}).bmm(rescaled).view({1, h, w, 2});
}

// ShearX/Y, TranslateX/Y, Rotate as torchvision's F.affine / F.rotate on tensors: nearest, zeros outside.
torch::Tensor geometric(int64_t op, const torch::Tensor& x, const std::vector<double>& mags) {
  const int64_t h = x.size(2), w = x.size(3);
  std::vector<torch::Tensor> grids;
  grids.reserve(mags.size());
  for (const double m : mags) {
    std::array<double, 6> matrix{};
    switch (op) {
      case kShearX:  // center [0, 0]: the top-left corner
        matrix = inverse_affine(-static_cast<double>(w) * 0.5, -static_cast<double>(h) * 0.5, 0.0, 0.0, 0.0,
                                std::atan(m) * kRadToDeg, 0.0);
        break;
      case kShearY:
        matrix = inverse_affine(-static_cast<double>(w) * 0.5, -static_cast<double>(h) * 0.5, 0.0, 0.0, 0.0, 0.0,
                                std::atan(m) * kRadToDeg);
        break;
      case kTranslateX:
        matrix = inverse_affine(0.0, 0.0, 0.0, std::trunc(m), 0.0, 0.0, 0.0);
        break;
      case kTranslateY:
        matrix = inverse_affine(0.0, 0.0, 0.0, 0.0, std::trunc(m), 0.0, 0.0);
        break;
      default:  // kRotate: F.rotate passes -angle
        matrix = inverse_affine(0.0, 0.0, -m, 0.0, 0.0, 0.0, 0.0);
        break;
    }
    grids.push_back(affine_grid(matrix, h, w));
  }
  auto grid = torch::cat(grids).to(x.device());
  return F::grid_sample(
             x, grid, F::GridSampleFuncOptions().mode(torch::kNearest).padding_mode(torch::kZeros).align_corners(false))
      .round();
}

// A per-image float32 column (n×1×1×1) on x's device.
torch::Tensor per_image(const std::vector<double>& v, const torch::Tensor& x) {
  return torch::tensor(v, torch::kFloat64).to(x.device(), torch::kFloat32).view({-1, 1, 1, 1});
}

// _blend: (r·a + (1 − r)·b).clamp(0, 255) cast to uint8 (truncation), r and 1 − r rounded to float32 as
// PyTorch's scalar multiplication does.
torch::Tensor blend(const torch::Tensor& a, const torch::Tensor& b, const std::vector<double>& ratio) {
  std::vector<double> rest(ratio.size());
  for (size_t i = 0; i < ratio.size(); ++i) rest[i] = 1.0 - ratio[i];
  return (a * per_image(ratio, a) + b * per_image(rest, a)).clamp(0, 255).trunc();
}

// rgb_to_grayscale of uint8 images (truncated), one channel.
torch::Tensor grayscale(const torch::Tensor& x) {
  if (x.size(1) == 1) return x;
  return (x.select(1, 0) * 0.2989 + x.select(1, 1) * 0.587 + x.select(1, 2) * 0.114).trunc().unsqueeze(1);
}

std::vector<double> factors(const std::vector<double>& mags) {
  std::vector<double> f(mags.size());
  for (size_t i = 0; i < mags.size(); ++i) f[i] = 1.0 + mags[i];
  return f;
}

torch::Tensor sharpness(const torch::Tensor& x, const std::vector<double>& mags) {
  const int64_t c = x.size(1);
  if (x.size(2) <= 2 || x.size(3) <= 2) return x;
  auto kernel = torch::ones({3, 3}, x.options());
  kernel[1][1] = 5.0;
  kernel /= kernel.sum();
  auto blurred = F::conv2d(x, kernel.expand({c, 1, 3, 3}), F::Conv2dFuncOptions().groups(c)).round();
  auto degenerate = x.clone();
  degenerate.narrow(2, 1, x.size(2) - 2).narrow(3, 1, x.size(3) - 2).copy_(blurred);
  return blend(x, degenerate, factors(mags));
}

torch::Tensor autocontrast(const torch::Tensor& x) {
  auto lo = x.amin({2, 3}, true), hi = x.amax({2, 3}, true);
  auto scale = (hi - lo).reciprocal() * 255.0;  // Python's 255 / tensor is tensor.reciprocal() * 255
  auto flat = scale.isfinite().logical_not();
  lo = lo.masked_fill(flat, 0);
  scale = scale.masked_fill(flat, 1);
  return ((x - lo) * scale).clamp(0, 255).trunc();
}

// torchvision's _scale_channel for every channel of every image at once (integer arithmetic throughout).
torch::Tensor equalize_channels(const torch::Tensor& x) {
  const int64_t b = x.size(0), c = x.size(1), hw = x.size(2) * x.size(3);
  auto v = x.reshape({b * c, hw}).to(torch::kInt64);
  auto hist = torch::zeros({b * c, 256}, v.options()).scatter_add_(1, v, torch::ones_like(v));
  // The sum of the non-empty bins but the last: every pixel but those at the channel's maximum.
  auto last = hist.gather(1, std::get<0>(v.max(1, true)));
  auto step = (hw - last).div(255, "floor");
  auto safe = step.clamp_min(1);
  auto lut = (hist.cumsum(1) + step.div(2, "floor")).div(safe, "floor");
  lut = torch::constant_pad_nd(lut, {1, 0}).narrow(1, 0, 256).clamp(0, 255);
  auto out = torch::where(step == 0, v, lut.gather(1, v));
  return out.to(x.scalar_type()).view(x.sizes());
}

torch::Tensor apply_op(int64_t op, const torch::Tensor& x, const std::vector<double>& mags) {
  switch (op) {
    case kShearX:
    case kShearY:
    case kTranslateX:
    case kTranslateY:
    case kRotate:
      return geometric(op, x, mags);
    case kBrightness:
      return blend(x, torch::zeros_like(x), factors(mags));
    case kColor:
      return x.size(1) == 1 ? x : blend(x, grayscale(x), factors(mags));
    case kContrast:
      return blend(x, grayscale(x).mean({1, 2, 3}, true), factors(mags));
    case kSharpness:
      return sharpness(x, mags);
    case kPosterize: {
      std::vector<double> q(mags.size());
      for (size_t i = 0; i < mags.size(); ++i) q[i] = std::ldexp(1.0, 8 - static_cast<int>(mags[i]));
      auto step = per_image(q, x);
      return (x / step).floor() * step;  // img & -2^(8 - bits)
    }
    case kSolarize: {
      auto threshold = per_image(mags, x);
      return torch::where(x >= threshold, 255 - x, x);
    }
    case kAutoContrast:
      return autocontrast(x);
    case kEqualize:
      return equalize_channels(x);
    default:
      return x;
  }
}

}  // namespace

torch::Tensor equalize(const torch::Tensor& x) { return equalize_channels(x); }

torch::Tensor auto_augment(const torch::Tensor& input, const AutoAugmentConfig& c, at::Generator& gen,
                           AutoAugmentDraws* draws) {
  if (c.kind == AutoAugmentKind::None) return input;
  if (c.kind == AutoAugmentKind::TimmRandAugment) return timm_rand_augment(input, c, gen, draws);
  const int64_t b = input.size(0), h = input.size(2), w = input.size(3);
  const bool wide = c.kind == AutoAugmentKind::TrivialAugmentWide;
  const int64_t steps = wide ? 1 : c.num_ops;
  std::array<std::vector<double>, kAutoAugmentOps> bins;
  for (int64_t op = 0; op < kAutoAugmentOps; ++op)
    bins[static_cast<size_t>(op)] = magnitude_bins(op, c.kind, c.num_bins, h, w);

  // The draws, per image and step: an operation, a magnitude bin (TrivialAugment; RandAugment's is fixed), a sign.
  auto ops = torch::randint(0, kAutoAugmentOps, {b, steps}, gen, torch::kInt64);
  auto bin = wide ? torch::randint(0, c.num_bins, {b, steps}, gen, torch::kInt64)
                  : torch::full({b, steps}, c.magnitude, torch::kInt64);
  auto negative = torch::randint(0, 2, {b, steps}, gen, torch::kInt64);
  auto mags = torch::zeros({b, steps}, torch::kFloat64);
  auto op_a = ops.accessor<int64_t, 2>();
  auto bin_a = bin.accessor<int64_t, 2>();
  auto neg_a = negative.accessor<int64_t, 2>();
  auto mag_a = mags.accessor<double, 2>();
  for (int64_t i = 0; i < b; ++i)
    for (int64_t s = 0; s < steps; ++s) {
      const int64_t op = op_a[i][s];
      const auto& values = bins[static_cast<size_t>(op)];
      if (values.empty()) continue;
      const double m = values[static_cast<size_t>(bin_a[i][s])];
      mag_a[i][s] = is_signed(op) && neg_a[i][s] != 0 ? -m : m;
    }
  if (draws != nullptr) {
    draws->ops = ops;
    draws->magnitudes = mags;
    draws->names.assign(kOpNames.begin(), kOpNames.end());
  }

  auto x = input.clone();
  for (int64_t s = 0; s < steps; ++s) {
    auto step_ops = ops.select(1, s);
    for (int64_t op = 1; op < kAutoAugmentOps; ++op) {  // 0 is the identity
      auto idx = (step_ops == op).nonzero().squeeze(1);
      if (idx.numel() == 0) continue;
      std::vector<double> m(static_cast<size_t>(idx.numel()));
      auto idx_a = idx.accessor<int64_t, 1>();
      for (int64_t k = 0; k < idx.numel(); ++k) m[static_cast<size_t>(k)] = mag_a[idx_a[k]][s];
      auto on_device = idx.to(x.device());
      x.index_copy_(0, on_device, apply_op(op, x.index_select(0, on_device), m));
    }
  }
  return x;
}

torch::Tensor random_erase(const torch::Tensor& x, const EraseConfig& c, at::Generator& gen, torch::Tensor* boxes) {
  const int64_t b = x.size(0), h = x.size(2), w = x.size(3);
  constexpr int64_t tries = 10;
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  auto erase = torch::rand({b}, gen, f64) < c.prob;
  auto area = torch::empty({b, tries}, f64).uniform_(c.scale_min, c.scale_max, gen) * static_cast<double>(h * w);
  auto ratio = torch::empty({b, tries}, f64).uniform_(std::log(c.ratio_min), std::log(c.ratio_max), gen).exp();
  auto eh = (area * ratio).sqrt().round(), ew = (area / ratio).sqrt().round();
  auto fits = (eh < static_cast<double>(h)) & (ew < static_cast<double>(w));
  auto first = (fits.to(torch::kInt64) * torch::arange(tries, 0, -1)).argmax(1, true);  // the first box that fits
  auto found = fits.any(1) & erase;
  auto zero = torch::zeros({b}, f64);
  auto bh = torch::where(found, eh.gather(1, first).squeeze(1), zero);
  auto bw = torch::where(found, ew.gather(1, first).squeeze(1), zero);
  auto top = (torch::rand({b}, gen, f64) * (static_cast<double>(h) - bh + 1)).floor();
  auto left = (torch::rand({b}, gen, f64) * (static_cast<double>(w) - bw + 1)).floor();
  if (boxes != nullptr) *boxes = torch::stack({top, left, bh, bw}, 1).to(torch::kInt64);
  if (!found.any().item<bool>()) return x;
  auto rows = torch::arange(h, f64).view({1, h});
  auto cols = torch::arange(w, f64).view({1, w});
  auto in_rows = (rows >= top.view({b, 1})) & (rows < (top + bh).view({b, 1}));
  auto in_cols = (cols >= left.view({b, 1})) & (cols < (left + bw).view({b, 1}));
  auto mask = (in_rows.view({b, 1, h, 1}) & in_cols.view({b, 1, 1, w})).to(x.device());
  if (!c.random_value) return x.masked_fill(mask, c.value);
  // Standard normal values, drawn for the images that erase only.
  auto idx = found.nonzero().squeeze(1);
  auto noise = torch::zeros(x.sizes(), x.options());
  noise.index_copy_(0, idx.to(x.device()),
                    torch::empty({idx.numel(), x.size(1), h, w}, torch::kFloat32).normal_(0, 1, gen).to(x.options()));
  return torch::where(mask, noise, x);
}

}  // namespace rt
