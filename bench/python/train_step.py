"""PyTorch's side of bench/train-vs-pytorch: the same model, batch, optimizer, threads and memory format,
trained on an in-memory uint8 dataset (index, convert, normalise per batch), in the usual Python loop.
usage: train_step.py ARCH BATCH SIZE CHANNELS WARMUP ITERS THREADS MEMORY_FORMAT
Prints one JSON line: {"imagesPerSecond": ...}"""
import json
import os
import sys
import time

import torch
import torch.nn.functional as F
import torchvision

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "test", "python"))
from reference_nets import Net  # noqa: E402

arch, batch, size, channels, warmup, iters, threads, fmt = sys.argv[1:9]
batch, size, channels, warmup, iters, threads = map(int, (batch, size, channels, warmup, iters, threads))
torch.set_num_threads(threads)
torch.manual_seed(0)
if arch.startswith("cifar-resnet"):
    n = (int(arch[len("cifar-resnet"):]) - 2) // 6
    model = Net("basic", [n, n, n], [16, 32, 64], "cifar", "A", in_ch=channels, classes=10)
else:
    model = getattr(torchvision.models, arch)(num_classes=10)
    if channels != 3:
        model.conv1 = torch.nn.Conv2d(channels, 64, 7, 2, 3, bias=False)
channels_last = fmt == "channels_last"
if channels_last:
    model = model.to(memory_format=torch.channels_last)
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
count = max(batch * 8, 1024)
images = torch.randint(0, 256, (count, channels, size, size), dtype=torch.uint8)
labels = torch.randint(0, 10, (count,))
mean, std = 0.5, 0.25
model.train()


def step(i):
    idx = torch.randint(0, count, (batch,))
    x = (images[idx].float() / 255 - mean) / std
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    opt.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(x), labels[idx])
    loss.backward()
    opt.step()


for i in range(warmup):
    step(i)
start = time.perf_counter()
for i in range(iters):
    step(i)
elapsed = time.perf_counter() - start
print(json.dumps({"imagesPerSecond": iters * batch / elapsed}))
