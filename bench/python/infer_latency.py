"""PyTorch inference latency (eval, no_grad) for bench/infer-vs-pytorch.
usage: infer_latency.py JSON  with {arch, batch, size, threads, format, repeats, device, mode}
mode: "eager" (default); "freeze": torch.jit.trace, torch.jit.freeze, torch.jit.optimize_for_inference (oneDNN
fusions, weights prepacked); "compile": torch.compile (inductor), compiled before timing.
Prints {"ms": median milliseconds per batch}"""
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "test", "python"))
from reference_nets import Net, imagenet_model  # noqa: E402

c = json.loads(sys.argv[1])
torch.set_num_threads(c["threads"])
device = torch.device(c.get("device", "cpu"))
arch = c["arch"]
if arch.startswith("cifar-resnet"):
    n = (int(arch[len("cifar-resnet"):]) - 2) // 6
    model = Net("basic", [n, n, n], [16, 32, 64], "cifar", "A", classes=10)
else:
    model = imagenet_model(arch, 1000)
model = model.to(device).eval()
x = torch.randn(c["batch"], 3, c["size"], c["size"], device=device)
if c["format"] == "channels_last":
    model = model.to(memory_format=torch.channels_last)
    x = x.contiguous(memory_format=torch.channels_last)
mode = c.get("mode", "eager")
with torch.no_grad():
    if mode == "freeze":
        model = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(model, x)))
    elif mode == "compile":
        model = torch.compile(model)
times = []
with torch.no_grad():
    for i in range(c["repeats"] + 3):
        start = time.perf_counter()
        model(x)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= 3:
            times.append((time.perf_counter() - start) * 1000)
print(json.dumps({"ms": statistics.median(times)}))
