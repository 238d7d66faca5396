"""timm's stochastic depth on a 2-block ResNet (BasicBlock, layers [1, 1], drop_path_rate P): the linear rule gives
the first block 0 and the last P. In train mode each sample's logits are one of two: the last block's residual kept
(scaled by 1 / (1 - P), timm's DropPath) or dropped. Writes the weights, the input and both candidates; the eval
logits too (drop path is the identity there).
usage: timm_drop_path.py OUT_DIR SEED BATCH SIZE P"""
import sys

import torch
from timm.models.resnet import BasicBlock, ResNet

from common import perturb_batchnorm, save_raw, save_safetensors

out, seed, batch, size, p = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
torch.manual_seed(seed)
model = ResNet(block=BasicBlock, layers=[1, 1], channels=(64, 128), num_classes=5, drop_path_rate=p)
assert model.layer1[0].drop_path is None and abs(model.layer2[0].drop_path.drop_prob - p) < 1e-12
model.layer3 = model.layer4 = torch.nn.Identity()  # timm's forward names four stages; this net has two
gen = torch.Generator().manual_seed(seed + 1)
perturb_batchnorm(model, gen)
save_safetensors(f"{out}/weights.safetensors", model.state_dict())
x = torch.randn(batch, 3, size, size, generator=gen)
save_raw(f"{out}/input.bin", x)


class Fixed(torch.nn.Module):
    def __init__(self, factor):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return x * self.factor


with torch.no_grad():
    model.eval()
    save_raw(f"{out}/eval.bin", model(x))
    model.train()
    for name, factor in (("kept", 1.0 / (1.0 - p)), ("dropped", 0.0)):
        model.layer2[0].drop_path = Fixed(factor)
        save_raw(f"{out}/{name}.bin", model(x))
