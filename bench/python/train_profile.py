"""PyTorch's side of bench/train-profile: the training step of bench/python/train_step.py (same model, batch,
optimizer, threads and memory format), each phase timed on its own: data (index, convert, normalise, layout),
forward with the loss, backward, optimizer (zero_grad and step); and the process's minor page faults and system
time over the timed iterations (what glibc's returned and re-faulted memory costs). usage: train_profile.py JSON
JSON: {arch, batch, size, warmup, iters, threads, format}. Prints one JSON line."""
import json
import os
import resource
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "test", "python"))
from reference_nets import Net, imagenet_model  # noqa: E402

c = json.loads(sys.argv[1])
torch.set_num_threads(c["threads"])
torch.manual_seed(0)
arch = c["arch"]
if arch.startswith("cifar-resnet"):
    n = (int(arch[len("cifar-resnet"):]) - 2) // 6
    model = Net("basic", [n, n, n], [16, 32, 64], "cifar", "A", in_ch=3, classes=10)
else:
    model = imagenet_model(arch, 10)
channels_last = c["format"] == "channels_last"
if channels_last:
    model = model.to(memory_format=torch.channels_last)
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
batch, size = c["batch"], c["size"]
count = max(batch * 8, 1024)
images = torch.randint(0, 256, (count, 3, size, size), dtype=torch.uint8)
labels = torch.randint(0, 10, (count,))
model.train()
phases = {"data": 0.0, "forward": 0.0, "backward": 0.0, "optimizer": 0.0}


def step():
    t0 = time.perf_counter()
    idx = torch.randint(0, count, (batch,))
    x = (images[idx].float() / 255 - 0.5) / 0.25
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = labels[idx]
    t1 = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(x), y)
    t2 = time.perf_counter()
    loss.backward()
    t3 = time.perf_counter()
    opt.step()
    t4 = time.perf_counter()
    return t1 - t0, t2 - t1, t3 - t2, t4 - t3


for _ in range(c["warmup"]):
    step()
usage = resource.getrusage(resource.RUSAGE_SELF)
start = time.perf_counter()
for _ in range(c["iters"]):
    for key, seconds in zip(phases, step()):
        phases[key] += seconds
wall = time.perf_counter() - start
after = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({
    "seconds": wall,
    "phases": phases,
    "minorFaults": after.ru_minflt - usage.ru_minflt,
    "systemSeconds": after.ru_stime - usage.ru_stime,
    "torch": torch.__version__,
}))
