"""torchvision's own augmentation code on our draws. Reads N×C×H×W uint8 images and, per image, the operations
(names and signed magnitudes) our batched TrivialAugmentWide / RandAugment drew; applies torchvision's _apply_op
(the function TrivialAugmentWide and RandAugment call, nearest interpolation, no fill) to each image in turn, and
writes the results as uint8. With --spaces it prints torchvision's magnitude bins of both policies instead.
usage: torchvision_augment.py IMAGES.bin N C H W DRAWS.json OUT.bin
       torchvision_augment.py --spaces BINS H W"""
import json
import sys

import torch
import torchvision
from torchvision.transforms import InterpolationMode
from torchvision.transforms.autoaugment import RandAugment, TrivialAugmentWide, _apply_op

if sys.argv[1] == "--spaces":
    bins, h, w = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])

    def space(s):
        return {k: {"values": v.double().reshape(-1).tolist(), "signed": signed} for k, (v, signed) in s.items()}

    print(json.dumps({
        "torchvision": torchvision.__version__,
        "trivialAugmentWide": space(TrivialAugmentWide()._augmentation_space(bins)),
        "randAugment": space(RandAugment()._augmentation_space(bins, (h, w))),
    }))
    sys.exit(0)

path, n, c, h, w, draws_path, out = sys.argv[1], *map(int, sys.argv[2:6]), sys.argv[6], sys.argv[7]
images = torch.frombuffer(bytearray(open(path, "rb").read()), dtype=torch.uint8).reshape(n, c, h, w)
draws = json.load(open(draws_path))
results = []
for img, ops in zip(images, draws):
    for op in ops:
        img = _apply_op(img, op["name"], op["magnitude"], interpolation=InterpolationMode.NEAREST, fill=None)
    results.append(img)
open(out, "wb").write(torch.stack(results).contiguous().numpy().tobytes())
