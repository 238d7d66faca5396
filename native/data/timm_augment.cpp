// timm's RandAugment (timm/data/auto_augment.py: rand_augment_transform, AugmentOp, the level functions) with the
// Pillow operations it calls (ImageOps, ImageEnhance, Image.transform / rotate), batched: images that drew the same
// operation (and resampling filter) go through it together. Each operation follows Pillow 13's C code step by step
// (libImaging/Blend.c, Filter.c, Geometry.c, Convert.c) in the same float32 or float64 arithmetic, so one image
// gives Pillow's pixels for the same argument.
#include <torch/torch.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <vector>

#include "data/auto_augment.h"

namespace rt {

namespace {

// timm's _RAND_TRANSFORMS and _RAND_INCREASING_TRANSFORMS: the same operations at the same places, six of them
// with the increasing level functions.
enum TimmOp : int64_t {
  kAutoContrast,
  kEqualize,
  kInvert,
  kRotate,
  kPosterize,
  kSolarize,
  kSolarizeAdd,
  kColor,
  kContrast,
  kBrightness,
  kSharpness,
  kShearX,
  kShearY,
  kTranslateXRel,
  kTranslateYRel,
};
const std::vector<const char*> kNames = {"AutoContrast", "Equalize",    "Invert", "Rotate",        "Posterize",
                                         "Solarize",     "SolarizeAdd", "Color",  "Contrast",      "Brightness",
                                         "Sharpness",    "ShearX",      "ShearY", "TranslateXRel", "TranslateYRel"};
const std::vector<const char*> kIncreasingNames = {"AutoContrast",
                                                   "Equalize",
                                                   "Invert",
                                                   "Rotate",
                                                   "PosterizeIncreasing",
                                                   "SolarizeIncreasing",
                                                   "SolarizeAdd",
                                                   "ColorIncreasing",
                                                   "ContrastIncreasing",
                                                   "BrightnessIncreasing",
                                                   "SharpnessIncreasing",
                                                   "ShearX",
                                                   "ShearY",
                                                   "TranslateXRel",
                                                   "TranslateYRel"};
constexpr double kLevelDenom = 10.0;    // timm's _LEVEL_DENOM
constexpr double kTranslatePct = 0.45;  // its translate_pct default

bool negatable(int64_t op, bool increasing) {
  return op == kRotate || op == kShearX || op == kShearY || op == kTranslateXRel || op == kTranslateYRel ||
         (increasing && op >= kColor && op <= kSharpness);
}

// The level function of `op` (timm's LEVEL_TO_ARG) at the clipped magnitude, the sign already drawn.
double level_to_arg(int64_t op, bool increasing, double level, bool negative) {
  const double l = level / kLevelDenom;
  const double sign = negative ? -1.0 : 1.0;
  switch (op) {
    case kRotate:
      return sign * (l * 30.0);
    case kPosterize:
      return increasing ? 4.0 - std::trunc(l * 4.0) : std::trunc(l * 4.0);
    case kSolarize: {
      const double t = std::min(256.0, std::trunc(l * 256.0));
      return increasing ? 256.0 - t : t;
    }
    case kSolarizeAdd:
      return std::min(128.0, std::trunc(l * 110.0));
    case kColor:
    case kContrast:
    case kBrightness:
    case kSharpness:
      return increasing ? std::max(0.1, 1.0 + sign * (l * 0.9)) : l * 1.8 + 0.1;
    case kShearX:
    case kShearY:
      return sign * (l * 0.3);
    case kTranslateXRel:
    case kTranslateYRel:
      return sign * (l * kTranslatePct);
    default:
      return 0.0;
  }
}

torch::Tensor column(const std::vector<double>& v, const torch::Tensor& like, torch::ScalarType type) {
  return torch::tensor(v, torch::kFloat64).to(like.device(), type).view({-1, 1, 1, 1});
}

// Image.blend(degenerate, image, factor) (ImagingBlend): factor as a C float, d + α·(x − d) in float32, clipped
// and truncated; α = 0 and 1 copy.
torch::Tensor pil_blend(const torch::Tensor& degenerate, const torch::Tensor& x, const std::vector<double>& factor) {
  std::vector<double> alpha(factor.size());
  for (size_t i = 0; i < factor.size(); ++i) alpha[i] = static_cast<float>(factor[i]);
  auto a = column(alpha, x, torch::kFloat32);
  auto d = degenerate.expand_as(x);
  return (d + (x - d) * a).clamp(0, 255).trunc();
}

// convert("L"): (R·19595 + G·38470 + B·7471 + 0x8000) >> 16, exact in float64. One channel: itself.
torch::Tensor luma(const torch::Tensor& x) {
  if (x.size(1) == 1) return x;
  auto v = x.to(torch::kFloat64);
  auto s = v.select(1, 0) * 19595.0 + v.select(1, 1) * 38470.0 + v.select(1, 2) * 7471.0 + 32768.0;
  return (s / 65536.0).floor().to(x.scalar_type()).unsqueeze(1);
}

// ImageFilter.SMOOTH (ImagingFilter3x3, 8 bits): the kernel 1 1 1 / 1 5 1 / 1 1 1 divided by 13 in float32, the sum
// from 0.5 over the row below, the row and the row above, each row left to right, truncated; the border copied.
torch::Tensor smooth(const torch::Tensor& x) {
  const int64_t h = x.size(2), w = x.size(3);
  if (h < 3 || w < 3) return x;
  const float k1 = 1.0F / 13.0F, k5 = 5.0F / 13.0F;
  auto row = [&](int64_t dy, bool centre) {  // KERNEL1x3 over the rows at offset dy, for every inner pixel
    auto r = x.narrow(2, 1 + dy, h - 2);
    auto l = r.narrow(3, 0, w - 2), m = r.narrow(3, 1, w - 2), rt = r.narrow(3, 2, w - 2);
    return (l * k1 + m * (centre ? k5 : k1)) + rt * k1;
  };
  auto ss = torch::full({}, 0.5F, x.options()) + row(1, false);
  ss = ss + row(0, true);
  ss = ss + row(-1, false);
  auto out = x.clone();
  out.narrow(2, 1, h - 2).narrow(3, 1, w - 2).copy_(ss.clamp(0, 255).trunc());
  return out;
}

// ImageOps.autocontrast (cutoff 0): per channel lo, hi; int(v·scale + offset) clipped, scale = 255 / (hi − lo).
torch::Tensor pil_autocontrast(const torch::Tensor& x) {
  auto v = x.to(torch::kFloat64);
  auto lo = v.amin({2, 3}, true), hi = v.amax({2, 3}, true);
  auto flat = hi <= lo;
  auto scale = torch::where(flat, torch::ones_like(lo), 255.0 / (hi - lo));
  auto offset = torch::where(flat, torch::zeros_like(lo), -lo * scale);
  return (v * scale + offset).trunc().clamp(0, 255).to(x.scalar_type());
}

// Image.transform(size, AFFINE, a, resample, fillcolor) (ImagingGenericTransform with affine_transform and the
// bilinear or bicubic filter): each output pixel's centre mapped through a in float64; outside the image the fill,
// else the filter over clamped neighbours, truncated (bicubic clipped first).
torch::Tensor pil_affine(const torch::Tensor& x, const std::vector<std::array<double, 6>>& a, bool bicubic,
                         const torch::Tensor& fill) {
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64).device(x.device());
  auto coef = [&](int k) {
    std::vector<double> v(a.size());
    for (size_t i = 0; i < a.size(); ++i) v[i] = a[i][static_cast<size_t>(k)];
    return torch::tensor(v, torch::kFloat64).to(x.device()).view({n, 1, 1});
  };
  auto xo = (torch::arange(w, f64) + 0.5).view({1, 1, w});
  auto yo = (torch::arange(h, f64) + 0.5).view({1, h, 1});
  auto xin = coef(0) * xo + coef(1) * yo + coef(2);  // a0·x + a1·y + a2, in that order
  auto yin = coef(3) * xo + coef(4) * yo + coef(5);
  auto inside = (xin >= 0.0) & (xin < static_cast<double>(w)) & (yin >= 0.0) & (yin < static_cast<double>(h));
  auto xs = xin - 0.5, ys = yin - 0.5;
  auto fx = xs.floor(), fy = ys.floor();
  auto dx = (xs - fx).unsqueeze(1), dy = (ys - fy).unsqueeze(1);
  auto src = x.to(torch::kFloat64).reshape({n, c, h * w});
  // The pixels at column fx + i, row fy + j (clamped), every channel: n×c×h×w.
  auto at = [&](int64_t i, int64_t j) {
    auto cx = (fx + static_cast<double>(i)).clamp(0, static_cast<double>(w - 1));
    auto cy = (fy + static_cast<double>(j)).clamp(0, static_cast<double>(h - 1));
    auto idx = (cy * static_cast<double>(w) + cx).to(torch::kInt64).view({n, 1, h * w}).expand({n, c, h * w});
    return src.gather(2, idx).view({n, c, h, w});
  };
  torch::Tensor v;
  if (!bicubic) {
    auto lerp = [](const torch::Tensor& p, const torch::Tensor& q, const torch::Tensor& d) { return p + (q - p) * d; };
    auto v1 = lerp(at(0, 0), at(1, 0), dx), v2 = lerp(at(0, 1), at(1, 1), dx);
    v = lerp(v1, v2, dy).trunc();
  } else {
    // BICUBIC(v, v1, v2, v3, v4, d) as Geometry.c writes it.
    auto cubic = [](const torch::Tensor& v1, const torch::Tensor& v2, const torch::Tensor& v3, const torch::Tensor& v4,
                    const torch::Tensor& d) {
      auto p1 = v2;
      auto p2 = -v1 + v3;
      auto p3 = 2 * (v1 - v2) + v3 - v4;
      auto p4 = -v1 + v2 - v3 + v4;
      return p1 + d * (p2 + d * (p3 + d * p4));
    };
    std::array<torch::Tensor, 4> rows;
    for (int64_t j = 0; j < 4; ++j)
      rows[static_cast<size_t>(j)] = cubic(at(-1, j - 1), at(0, j - 1), at(1, j - 1), at(2, j - 1), dx);
    v = cubic(rows[0], rows[1], rows[2], rows[3], dy).clamp(0, 255).trunc();
  }
  auto filled = fill.to(x.device(), torch::kFloat64).view({1, c, 1, 1}).expand({n, c, h, w});
  return torch::where(inside.unsqueeze(1), v, filled).to(x.scalar_type());
}

// CPython's round(v, 15), as Image.rotate rounds its matrix: the correctly rounded 15-decimal string read back.
double round15(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.15f", v);
  return std::strtod(buf, nullptr);
}

// Image.rotate(degrees, resample, fillcolor)'s matrix (expand off, the centre w/2, h/2).
std::array<double, 6> rotate_matrix(double degrees, int64_t h, int64_t w) {
  double angle = std::fmod(degrees, 360.0);  // Python's %: the sign of the divisor
  if (angle != 0.0 && angle < 0.0) angle += 360.0;
  constexpr double kDegToRad = 3.14159265358979323846 / 180.0;
  const double rad = -(angle * kDegToRad);
  std::array<double, 6> m = {round15(std::cos(rad)),  round15(std::sin(rad)), 0.0,
                             round15(-std::sin(rad)), round15(std::cos(rad)), 0.0};
  const double cx = static_cast<double>(w) / 2.0, cy = static_cast<double>(h) / 2.0;
  m[2] = m[0] * -cx + m[1] * -cy + m[2];
  m[5] = m[3] * -cx + m[4] * -cy + m[5];
  m[2] += cx;
  m[5] += cy;
  return m;
}

torch::Tensor apply(int64_t op, const torch::Tensor& x, const std::vector<double>& args, bool bicubic,
                    const torch::Tensor& fill) {
  const int64_t h = x.size(2), w = x.size(3);
  switch (op) {
    case kAutoContrast:
      return pil_autocontrast(x);
    case kEqualize:
      return equalize(x);
    case kInvert:
      return 255 - x;
    case kPosterize: {  // bits kept: x & ~(2^(8 − bits) − 1); 8 or more: unchanged
      std::vector<double> step(args.size());
      for (size_t i = 0; i < args.size(); ++i)
        step[i] = args[i] >= 8 ? 1.0 : std::ldexp(1.0, 8 - static_cast<int>(args[i]));
      auto s = column(step, x, x.scalar_type());
      return (x / s).floor() * s;
    }
    case kSolarize:
      return torch::where(x >= column(args, x, x.scalar_type()), 255 - x, x);
    case kSolarizeAdd:
      return torch::where(x < 128, (x + column(args, x, x.scalar_type())).clamp_max(255), x);
    case kColor:
      return x.size(1) == 1 ? x : pil_blend(luma(x), x, args);
    case kContrast: {
      auto l = luma(x).to(torch::kFloat64);
      auto mean = (l.sum({1, 2, 3}, true) / static_cast<double>(h * w) + 0.5).trunc();
      return pil_blend(mean.to(x.scalar_type()), x, args);
    }
    case kBrightness:
      return pil_blend(torch::zeros({1}, x.options()).view({1, 1, 1, 1}), x, args);
    case kSharpness:
      return pil_blend(smooth(x), x, args);
    default:
      break;
  }
  std::vector<std::array<double, 6>> m(args.size());
  for (size_t i = 0; i < args.size(); ++i) {
    const double v = args[i];
    switch (op) {
      case kRotate:
        m[i] = rotate_matrix(v, h, w);
        break;
      case kShearX:
        m[i] = {1, v, 0, 0, 1, 0};
        break;
      case kShearY:
        m[i] = {1, 0, 0, v, 1, 0};
        break;
      case kTranslateXRel:
        m[i] = {1, 0, v * static_cast<double>(w), 0, 1, 0};
        break;
      default:  // kTranslateYRel
        m[i] = {1, 0, 0, 0, 1, v * static_cast<double>(h)};
        break;
    }
  }
  return pil_affine(x, m, bicubic, fill);
}

bool geometric(int64_t op) { return op == kRotate || op >= kShearX; }

}  // namespace

const std::vector<const char*>& timm_rand_augment_names(bool increasing) {
  return increasing ? kIncreasingNames : kNames;
}

torch::Tensor timm_rand_augment(const torch::Tensor& input, const AutoAugmentConfig& c, at::Generator& gen,
                                AutoAugmentDraws* draws) {
  const int64_t b = input.size(0), steps = c.num_ops, count = static_cast<int64_t>(kNames.size());
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  // The draws, per image and layer, in timm's order: an operation (with replacement), whether it applies (prob),
  // the magnitude (gauss(m, mstd), or uniform(0, m) for an infinite mstd, clipped to [0, 10]), the sign, the filter.
  auto ops = torch::randint(0, count, {b, steps}, gen, torch::kInt64);
  auto applied = torch::rand({b, steps}, gen, f64) <= c.prob;
  torch::Tensor level;
  if (std::isinf(c.magnitude_std))
    level = torch::rand({b, steps}, gen, f64) * static_cast<double>(c.magnitude);
  else if (c.magnitude_std > 0)
    level = torch::empty({b, steps}, f64).normal_(static_cast<double>(c.magnitude), c.magnitude_std, gen);
  else
    level = torch::full({b, steps}, static_cast<double>(c.magnitude), f64);
  level = level.clamp(0.0, kLevelDenom);
  auto negative = torch::randint(0, 2, {b, steps}, gen, torch::kInt64);
  auto bicubic = c.resample == TimmResample::Random
                     ? torch::randint(0, 2, {b, steps}, gen, torch::kInt64)
                     : torch::full({b, steps}, c.resample == TimmResample::Bicubic ? 1 : 0, torch::kInt64);
  auto args = torch::zeros({b, steps}, f64);
  auto op_a = ops.accessor<int64_t, 2>();
  auto level_a = level.accessor<double, 2>();
  auto neg_a = negative.accessor<int64_t, 2>();
  auto arg_a = args.accessor<double, 2>();
  for (int64_t i = 0; i < b; ++i)
    for (int64_t s = 0; s < steps; ++s) {
      const int64_t op = op_a[i][s];
      arg_a[i][s] = level_to_arg(op, c.increasing, level_a[i][s], negatable(op, c.increasing) && neg_a[i][s] != 0);
    }
  if (draws != nullptr) {
    draws->ops = ops;
    draws->magnitudes = args;
    draws->applied = applied;
    draws->bicubic = bicubic.to(torch::kBool);
    draws->names = timm_rand_augment_names(c.increasing);
  }

  auto fill = torch::tensor(c.fill, torch::kInt64).to(torch::kFloat64);
  auto x = input.clone();
  auto app_a = applied.accessor<bool, 2>();
  auto cubic_a = bicubic.accessor<int64_t, 2>();
  for (int64_t s = 0; s < steps; ++s)
    for (int64_t op = 0; op < count; ++op)
      for (int64_t filter = 0; filter < (geometric(op) ? 2 : 1); ++filter) {
        std::vector<int64_t> idx;
        std::vector<double> m;
        for (int64_t i = 0; i < b; ++i)
          if (op_a[i][s] == op && app_a[i][s] && (!geometric(op) || cubic_a[i][s] == filter)) {
            idx.push_back(i);
            m.push_back(arg_a[i][s]);
          }
        if (idx.empty()) continue;
        auto on_device = torch::tensor(idx, torch::kInt64).to(x.device());
        x.index_copy_(0, on_device, apply(op, x.index_select(0, on_device), m, filter == 1, fill));
      }
  return x;
}

}  // namespace rt
