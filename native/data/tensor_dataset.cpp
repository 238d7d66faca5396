#include "data/tensor_dataset.h"

#include <string>

#include "common/error.h"

namespace rt {

torch::Tensor to_unit_float(const torch::Tensor& images, torch::ScalarType dtype) {
  if (images.scalar_type() == torch::kUInt8) return images.to(dtype).div_(255.0);
  return images.to(dtype);
}

TensorDataset TensorDataset::make(torch::Tensor images, torch::Tensor labels, int64_t num_classes) {
  if (images.dim() != 4) throw Error("ERR_DATASET", "images must be N×C×H×W");
  if (images.scalar_type() != torch::kUInt8 && images.scalar_type() != torch::kFloat32)
    throw Error("ERR_DATASET", "images must be uint8 or float32");
  if (labels.dim() != 1 || labels.size(0) != images.size(0))
    throw Error("ERR_DATASET",
                std::to_string(images.size(0)) + " images but " + std::to_string(labels.numel()) + " labels");
  if (num_classes < 1) throw Error("ERR_DATASET", "num_classes must be at least 1");
  labels = labels.to(torch::kInt64);
  if (labels.numel() > 0) {
    auto bad = ((labels < 0) | (labels >= num_classes)).nonzero();
    if (bad.numel() > 0) {
      const int64_t i = bad[0][0].item<int64_t>();
      throw Error("ERR_DATASET", "label " + std::to_string(labels[i].item<int64_t>()) + " of image " +
                                     std::to_string(i) + " is out of range for " + std::to_string(num_classes) +
                                     " classes");
    }
  }
  return TensorDataset{images.contiguous(), labels.contiguous(), num_classes};
}

TensorDataset TensorDataset::subset(const torch::Tensor& indices) const {
  auto idx = indices.to(images.device(), torch::kInt64);
  if (idx.numel() > 0 && (idx.min().item<int64_t>() < 0 || idx.max().item<int64_t>() >= size()))
    throw Error("ERR_DATASET", "subset index out of range for a dataset of " + std::to_string(size()));
  return TensorDataset{images.index_select(0, idx), labels.index_select(0, idx), num_classes};
}

TensorDataset TensorDataset::to(const torch::Device& device) const {
  if (images.device() == device) return *this;
  return TensorDataset{images.to(device), labels.to(device), num_classes};
}

DatasetStats TensorDataset::stats() const {
  torch::NoGradGuard no_grad;
  const int64_t n = size(), c = images.size(1);
  auto sum = torch::zeros({c, images.size(2), images.size(3)}, torch::kFloat64);
  auto sq = torch::zeros({c}, torch::kFloat64);
  // In chunks: a float64 copy of the whole set would be 8x its size.
  for (int64_t start = 0; start < n; start += 4096) {
    auto chunk = to_unit_float(images.narrow(0, start, std::min<int64_t>(4096, n - start)).cpu(), torch::kFloat64);
    sum += chunk.sum(0);
    sq += chunk.pow(2).sum({0, 2, 3});
  }
  const double pixels = static_cast<double>(n) * images.size(2) * images.size(3);
  DatasetStats s;
  s.mean_image = (sum / std::max<int64_t>(n, 1)).to(torch::kFloat32);
  auto mean = sum.sum({1, 2}) / pixels;
  s.channel_mean = mean.to(torch::kFloat32);
  s.channel_std = (sq / pixels - mean.pow(2)).clamp_min(0).sqrt().to(torch::kFloat32);
  return s;
}

torch::Tensor TensorDataset::label_counts() const { return torch::bincount(labels.cpu(), {}, num_classes); }

}  // namespace rt
