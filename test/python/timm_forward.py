"""timm's ResNet variants (resnet50d, seresnet50, ...) on seeded weights and input: writes the state dict (safetensors
and torch.save's .pth, timm's parameter names), the input, and the logits in eval and in train mode.
usage: timm_forward.py ARCH OUT_DIR SEED BATCH SIZE CLASSES"""
import json
import sys

import timm
import torch

from common import perturb_batchnorm, save_raw, save_safetensors

arch, out, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
batch, size, classes = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
torch.manual_seed(seed)
model = timm.create_model(arch, pretrained=False, num_classes=classes)
gen = torch.Generator().manual_seed(seed + 1)
perturb_batchnorm(model, gen)
state = model.state_dict()
save_safetensors(f"{out}/weights.safetensors", state)
torch.save(state, f"{out}/model.pth")
x = torch.randn(batch, 3, size, size, generator=gen)
save_raw(f"{out}/input.bin", x)
with torch.no_grad():
    model.eval()
    save_raw(f"{out}/eval.bin", model(x))
    model.train()
    save_raw(f"{out}/train.bin", model(x))
print(json.dumps({"params": sum(p.numel() for p in model.parameters()),
                  "state": [[k, list(v.shape)] for k, v in state.items()]}))
