"""Forward of the reference nets (reference_nets.py) on seeded weights and input.
usage: reference_forward.py OUT_DIR SEED BATCH SIZE JSON_SPEC
JSON_SPEC: {"block","depths","widths","stem","shortcut","preact","inChannels","numClasses","shortcutScale","stride"}"""
import json
import sys

import torch

from common import perturb_batchnorm, save_raw, save_safetensors
from reference_nets import Net

out, seed, batch, size, spec = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), json.loads(sys.argv[5])
torch.manual_seed(seed)
model = Net(spec["block"], spec["depths"], spec["widths"], spec["stem"], spec["shortcut"], spec.get("preact", False),
            spec.get("inChannels", 3), spec.get("numClasses", 10), spec.get("shortcutScale", 1.0),
            spec.get("stride") == "conv1x1", spec.get("groups", 1), spec.get("widthPerGroup", 64))
gen = torch.Generator().manual_seed(seed + 1)
perturb_batchnorm(model, gen)
save_safetensors(f"{out}/weights.safetensors", model.state_dict())
x = torch.randn(batch, spec.get("inChannels", 3), size, size, generator=gen)
save_raw(f"{out}/input.bin", x)
with torch.no_grad():
    model.eval()
    save_raw(f"{out}/eval.bin", model(x))
    model.train()
    save_raw(f"{out}/train.bin", model(x))
print(json.dumps({"params": sum(p.numel() for p in model.parameters()), "names": list(model.state_dict().keys())}))
