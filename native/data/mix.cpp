#include "data/mix.h"

#include <ATen/ops/_standard_gamma.h>

#include <algorithm>
#include <cmath>

namespace rt {

namespace {

double uniform(at::Generator& gen) { return torch::rand({1}, gen, torch::kFloat64).item<double>(); }

// Beta(a, a) as X / (X + Y) with X, Y ~ Gamma(a).
double beta(double a, at::Generator& gen) {
  const torch::Tensor alpha = torch::full({2}, a, torch::kFloat64);
  const torch::Tensor g = at::_standard_gamma(alpha, gen);
  const double x = g[0].item<double>(), y = g[1].item<double>();
  return x + y > 0 ? x / (x + y) : 0.5;
}

int64_t randint(int64_t high, at::Generator& gen) { return torch::randint(0, high, {1}, gen).item<int64_t>(); }

}  // namespace

MixParams draw_mix(const MixConfig& c, int64_t height, int64_t width, at::Generator& gen) {
  MixParams p;
  if (!c.enabled() || uniform(gen) >= c.prob) return p;
  double lam;
  if (c.mixup_alpha > 0 && c.cutmix_alpha > 0) {
    p.cutmix = uniform(gen) < c.switch_prob;
    lam = beta(p.cutmix ? c.cutmix_alpha : c.mixup_alpha, gen);
  } else if (c.mixup_alpha > 0) {
    lam = beta(c.mixup_alpha, gen);
  } else {
    p.cutmix = true;
    lam = beta(c.cutmix_alpha, gen);
  }
  p.lam = lam;
  if (!p.cutmix) return p;
  // timm's rand_bbox: a box of sides int(side · √(1 − λ)) centred anywhere, clipped to the image.
  const double ratio = std::sqrt(1.0 - lam);
  const int64_t cut_h = static_cast<int64_t>(static_cast<double>(height) * ratio);
  const int64_t cut_w = static_cast<int64_t>(static_cast<double>(width) * ratio);
  const int64_t cy = randint(height, gen), cx = randint(width, gen);
  p.yl = std::clamp<int64_t>(cy - cut_h / 2, 0, height);
  p.yh = std::clamp<int64_t>(cy + cut_h / 2, 0, height);
  p.xl = std::clamp<int64_t>(cx - cut_w / 2, 0, width);
  p.xh = std::clamp<int64_t>(cx + cut_w / 2, 0, width);
  if (c.correct_lam)
    p.lam = 1.0 - static_cast<double>((p.yh - p.yl) * (p.xh - p.xl)) / static_cast<double>(height * width);
  return p;
}

torch::Tensor apply_mix(const torch::Tensor& x, const MixParams& p) {
  if (p.lam == 1.0) return x;
  if (!p.cutmix) return x * p.lam + x.flip(0) * (1.0 - p.lam);
  torch::Tensor out = x.clone();
  using torch::indexing::Slice;
  out.index_put_({Slice(), Slice(), Slice(p.yl, p.yh), Slice(p.xl, p.xh)},
                 x.flip(0).index({Slice(), Slice(), Slice(p.yl, p.yh), Slice(p.xl, p.xh)}));
  return out;
}

torch::Tensor mix_targets(const torch::Tensor& labels, int64_t classes, const MixParams& p, double smoothing,
                          torch::ScalarType dtype) {
  const double off = smoothing / static_cast<double>(classes), on = 1.0 - smoothing + off;
  const auto one_hot = [&](const torch::Tensor& y) {
    return torch::full({y.size(0), classes}, off, torch::TensorOptions().dtype(dtype).device(y.device()))
        .scatter_(1, y.unsqueeze(1), on);
  };
  return one_hot(labels) * p.lam + one_hot(labels.flip(0)) * (1.0 - p.lam);
}

}  // namespace rt
