"""PyTorch's side of bench/train-vs-pytorch: the same model, batch, optimizer, threads, device, precision and
memory format, trained on an in-memory uint8 dataset (index, convert, normalise per batch) in the usual
Python loop; optionally torch.compile'd. usage: train_step.py JSON
JSON: {arch, batch, size, channels, warmup, iters, threads, format, device, precision, compile}
Prints one JSON line: {"imagesPerSecond": ...}"""
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "test", "python"))
from reference_nets import Net, imagenet_model  # noqa: E402

c = json.loads(sys.argv[1])
torch.set_num_threads(c["threads"])
torch.manual_seed(0)
device = torch.device(c.get("device", "cpu"))
arch = c["arch"]
if arch.startswith("cifar-resnet"):
    n = (int(arch[len("cifar-resnet"):]) - 2) // 6
    model = Net("basic", [n, n, n], [16, 32, 64], "cifar", "A", in_ch=c["channels"], classes=10)
elif arch.endswith("d"):  # timm's ResNet-D variants: timm's own model
    import timm
    model = timm.create_model(arch, num_classes=10)
else:
    model = imagenet_model(arch, 10)
model = model.to(device)
channels_last = c["format"] == "channels_last"
if channels_last:
    model = model.to(memory_format=torch.channels_last)
if device.type == "cuda":
    torch.backends.cudnn.benchmark = True
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
batch, size = c["batch"], c["size"]
count = max(batch * 8, 1024)
images = torch.randint(0, 256, (count, c["channels"], size, size), dtype=torch.uint8, device=device)
labels = torch.randint(0, 10, (count,), device=device)
amp = {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(c.get("precision", "float32"))
scaler = torch.cuda.amp.GradScaler() if amp == torch.float16 else None
model.train()


def train_step(x, y):
    opt.zero_grad(set_to_none=True)
    with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
        loss = F.cross_entropy(model(x), y)
    if scaler:
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    else:
        loss.backward()
        opt.step()
    return loss


step_fn = torch.compile(train_step) if c.get("compile") else train_step


def step():
    idx = torch.randint(0, count, (batch,), device=device)
    x = (images[idx].float() / 255 - 0.5) / 0.25
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    step_fn(x, labels[idx])


for _ in range(c["warmup"]):
    step()
if device.type == "cuda":
    torch.cuda.synchronize()
start = time.perf_counter()
for _ in range(c["iters"]):
    step()
if device.type == "cuda":
    torch.cuda.synchronize()
print(json.dumps({"imagesPerSecond": c["iters"] * batch / (time.perf_counter() - start)}))
