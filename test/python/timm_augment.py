"""timm's own RandAugment operations on our draws. Reads N×C×H×W uint8 images and, per image, the operations our
batched timm RandAugment drew (names, the argument its level function gave, whether each applied, the filter);
applies timm.data.auto_augment's operation functions (NAME_TO_OP: Pillow's ImageOps, ImageEnhance, Image.transform
and rotate) with the same fill, and writes the results as uint8. With --levels M it prints, per operation, timm's
level function at magnitude M with either sign instead.
usage: timm_augment.py IMAGES.bin N C H W DRAWS.json FILL OUT.bin     (FILL: comma-separated, one per channel)
       timm_augment.py --levels M"""
import json
import sys

import numpy as np
import timm
from PIL import Image
import PIL
from timm.data import auto_augment as aa

if sys.argv[1] == "--levels":
    m = float(sys.argv[2])
    hparams = dict(aa._HPARAMS_DEFAULT)
    out = {"timm": timm.__version__, "pillow": PIL.__version__, "levels": {}}
    for sign, negate in (("plus", lambda v: v), ("minus", lambda v: -v)):
        aa._randomly_negate = negate
        for name, fn in aa.LEVEL_TO_ARG.items():
            if name in aa._RAND_TRANSFORMS or name in aa._RAND_INCREASING_TRANSFORMS:
                out["levels"].setdefault(name, {})[sign] = fn(m, hparams)[0] if fn is not None else 0
    print(json.dumps(out))
    sys.exit(0)

path, n, c, h, w, draws_path, fill, out = sys.argv[1], *map(int, sys.argv[2:6]), sys.argv[6], sys.argv[7], sys.argv[8]
images = np.frombuffer(open(path, "rb").read(), dtype=np.uint8).reshape(n, c, h, w)
fill = tuple(int(v) for v in fill.split(","))
filters = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}
results = []
for pixels, ops in zip(images, json.load(open(draws_path))):
    img = Image.fromarray(pixels[0], "L") if c == 1 else Image.fromarray(pixels.transpose(1, 2, 0).copy(), "RGB")
    for op in ops:
        if not op["applied"]:
            continue
        fn = aa.NAME_TO_OP[op["name"]]
        args = () if aa.LEVEL_TO_ARG[op["name"]] is None else (op["magnitude"],)
        if op["name"] in ("PosterizeIncreasing", "Posterize", "SolarizeIncreasing", "Solarize", "SolarizeAdd"):
            args = (int(op["magnitude"]),)
        if op["name"].startswith("Posterize") and args[0] == 0:
            # Keeping 0 bits: Pillow before 13 masked every bit (a black image); Pillow 13 refuses bits < 1, so
            # timm's Posterize at a magnitude under 2.5 raises there. Ours keeps the black image.
            img = img.point(lambda v: 0)
            continue
        img = fn(img, *args, fillcolor=fill, resample=filters[op.get("resample", "bilinear")])
    a = np.asarray(img)
    results.append(a[None] if c == 1 else a.transpose(2, 0, 1))
open(out, "wb").write(np.stack(results).astype(np.uint8).tobytes())
