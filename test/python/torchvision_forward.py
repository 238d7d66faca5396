"""torchvision's ResNet on seeded weights and input: writes the weights (safetensors), the input, and the
logits in eval and in train mode, plus the BN running statistics after the train-mode pass.
usage: torchvision_forward.py ARCH OUT_DIR SEED BATCH SIZE [paper-stride]"""
import json
import sys

import torch
import torchvision

from common import perturb_batchnorm, save_raw, save_safetensors

arch, out, seed, batch, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
paper_stride = len(sys.argv) > 6 and sys.argv[6] == "paper-stride"
torch.manual_seed(seed)
model = getattr(torchvision.models, arch)(num_classes=1000)
if paper_stride:
    # The paper's bottleneck ("v1"): the stride sits on the first 1x1, not on the 3x3.
    for layer in (model.layer2, model.layer3, model.layer4):
        layer[0].conv1.stride = (2, 2)
        layer[0].conv2.stride = (1, 1)
gen = torch.Generator().manual_seed(seed + 1)
perturb_batchnorm(model, gen)
save_safetensors(f"{out}/weights.safetensors", model.state_dict())
x = torch.randn(batch, 3, size, size, generator=gen)
save_raw(f"{out}/input.bin", x)
with torch.no_grad():
    model.eval()
    save_raw(f"{out}/eval.bin", model(x))
    model.train()
    save_raw(f"{out}/train.bin", model(x))
save_safetensors(f"{out}/after_train.safetensors", model.state_dict())
print(json.dumps({"input": list(x.shape)}))
