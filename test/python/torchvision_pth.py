"""A torchvision model saved the usual way, torch.save(model.state_dict(), path), with its eval logits.
usage: torchvision_pth.py ARCH OUT_DIR SEED SIZE"""
import sys

import torch
import torchvision

from common import perturb_batchnorm, save_raw

arch, out, seed, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
torch.manual_seed(seed)
model = getattr(torchvision.models, arch)(num_classes=1000)
perturb_batchnorm(model, torch.Generator().manual_seed(seed + 1))
torch.save(model.state_dict(), f"{out}/model.pth")
x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(seed + 2))
save_raw(f"{out}/input.bin", x)
model.eval()
with torch.no_grad():
    save_raw(f"{out}/eval.bin", model(x))
