"""torchvision's RandomErasing sampling rule, drawn K times on an H×W image: how often an image is erased (p, then a
box that fits within 10 tries), and the mean and spread of the box's area share and log aspect (log h/w).
usage: torchvision_erasing.py H W OPTIONS_JSON K   (OPTIONS: prob, scale, ratio, value)"""
import json
import math
import sys

import torch
from torchvision.transforms import RandomErasing

h, w, opts, k = int(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3]), int(sys.argv[4])
torch.manual_seed(0)
img = torch.zeros(1, h, w)
erasing = RandomErasing(p=opts["prob"], scale=tuple(opts["scale"]), ratio=tuple(opts["ratio"]), value=opts["value"])
erased, areas, log_ratios = 0, [], []
for _ in range(k):
    if torch.rand(1) >= erasing.p:
        continue
    i, j, eh, ew, v = RandomErasing.get_params(img, scale=erasing.scale, ratio=erasing.ratio, value=[opts["value"]])
    if eh == h and ew == w and v is img:  # no box fitted: torchvision returns the image itself
        continue
    erased += 1
    areas.append(eh * ew / (h * w))
    log_ratios.append(math.log(eh / ew))


def mean_sd(xs):
    m = sum(xs) / len(xs)
    return m, math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


(ma, sa), (mr, sr) = mean_sd(areas), mean_sd(log_ratios)
print(json.dumps({"erasedShare": erased / k, "meanArea": ma, "sdArea": sa, "meanLogRatio": mr, "sdLogRatio": sr}))
