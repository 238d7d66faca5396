"""Loads our safetensors weights into torchvision's model with load_state_dict(strict=True) and writes its
eval logits on the given input. usage: load_ours.py ARCH WEIGHTS INPUT N SIZE OUT"""
import sys

import torch
import torchvision

from common import load_safetensors, save_raw

arch, weights, input_file, n, size, out = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
state, meta = load_safetensors(weights)
model = getattr(torchvision.models, arch)(num_classes=state["fc.weight"].shape[0])
model.load_state_dict(state, strict=True)
x = torch.frombuffer(bytearray(open(input_file, "rb").read()), dtype=torch.float32).reshape(n, 3, size, size)
model.eval()
with torch.no_grad():
    save_raw(out, model(x))
print(meta.get("format", ""))
