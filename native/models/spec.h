#pragma once
// The plain description of a network: everything that decides its layers. Filled by the facade's arch table
// (lib/model/archs.ts), so depth is data and the C++ never needs to know the names "resnet50" or "cifar-plain20".
#include <cstdint>
#include <vector>

namespace rt {

enum class BlockKind { Basic, Bottleneck };

// How a block's input reaches the addition (the paper's Table 3 options).
//   A: identity; where the shape changes, stride subsampling and zero-padded channels, no parameters.
//   B: identity, and a 1x1 conv + BN projection only where the shape changes.
//   C: a projection on every block.
//   None: no shortcut at all: the plain network of the degradation experiment.
enum class ShortcutKind { A, B, C, None };

// ImageNet: 7x7/2 conv and 3x3/2 max pool. Cifar: one 3x3 conv at full resolution.
enum class StemKind { ImageNet, Cifar };

struct NetSpec {
  BlockKind block = BlockKind::Basic;
  bool preact = false;  // BN-ReLU-conv blocks with nothing after the add (Identity Mappings)
  ShortcutKind shortcut = ShortcutKind::B;
  StemKind stem = StemKind::ImageNet;
  std::vector<int64_t> depths{2, 2, 2, 2};         // blocks per stage
  std::vector<int64_t> widths{64, 128, 256, 512};  // base channels per stage (x4 after a bottleneck)
  int64_t in_channels = 3;
  int64_t num_classes = 1000;
  bool stride_on_3x3 = true;  // torchvision ("v1.5"); false puts it on the first 1x1, as the paper does
  // ResNeXt and Wide ResNet (torchvision's bottleneck): the 3x3 convolution has `groups` groups and the bottleneck
  // is floor(planes * width_per_group / 64) * groups channels wide. 1 and 64: the paper's bottleneck.
  int64_t groups = 1;
  int64_t width_per_group = 64;
  // The "Bag of Tricks" variants as timm builds them. ResNet-C: the 7x7 stem becomes three 3x3 convolutions
  // (stem_width, stem_width, then 2 * stem_width channels; timm's stem_type "deep"). ResNet-D: a projection shortcut
  // that changes the size average-pools (2x2, ceil mode, padding not counted) before a stride-1 1x1 (avg_down).
  bool deep_stem = false;
  int64_t stem_width = 32;
  bool avg_down = false;
  // Squeeze-and-excitation after each block's last BN (timm's attn_layer "se": 1/16 of the channels, a multiple of 8).
  bool squeeze_excite = false;
  // Stochastic depth: block i of n drops its residual branch per sample with probability drop_path * i / (n - 1) in
  // training, scaling the kept ones by 1 / (1 - p) (timm's drop_path_rate); the identity in eval.
  double drop_path = 0.0;
  double shortcut_scale = 1.0;  // h(x) = scale * x
  bool zero_init_residual = false;
  uint64_t seed = 0;
  // Parameters and activations in float64: a verification tool (as PyTorch's gradcheck), so that comparisons with a
  // reference are not decided by float32 rounding (a ReLU input near 0, kernels chosen by ISA or batch size).
  bool float64 = false;
};

inline int64_t expansion(BlockKind kind) { return kind == BlockKind::Bottleneck ? 4 : 1; }

// Channels of a bottleneck's 3x3 convolution (torchvision's `width`).
inline int64_t bottleneck_width(int64_t planes, int64_t groups, int64_t width_per_group) {
  return planes * width_per_group / 64 * groups;
}

}  // namespace rt
