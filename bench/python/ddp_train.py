"""PyTorch's side of bench/ddp-scaling: CIFAR ResNet-20 (option A) on synthetic data with DistributedDataParallel
and Gloo, WORLD processes of 1 thread each (WORLD 1: a plain single process), images/s of the world over the timed
window after a warm-up of the same length. usage: ddp_train.py JSON  ({world, iterations, batch, port})"""
import json
import os
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "test", "python"))
from reference_nets import Net  # noqa: E402


def run(rank, cfg, queue):
    torch.set_num_threads(1)
    world = cfg["world"]
    model = Net("basic", [3, 3, 3], [16, 32, 64], "cifar", "A", classes=10).to(memory_format=torch.channels_last)
    if world > 1:
        os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(cfg["port"])
        # Debian's PyTorch 2.x is built without libuv, which its TCPStore asks for by default from 2.4 on.
        os.environ.setdefault("USE_LIBUV", "0")
        dist.init_process_group("gloo", rank=rank, world_size=world)
        model = DDP(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    g = torch.Generator().manual_seed(rank)
    images = torch.randint(0, 256, (4096, 3, 32, 32), dtype=torch.uint8, generator=g)
    labels = torch.arange(4096) % 10
    b = cfg["batch"]

    def step(i):
        idx = torch.randint(0, 4096, (b,), generator=g)
        x = ((images[idx].float() / 255 - 0.5) / 0.25).contiguous(memory_format=torch.channels_last)
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), labels[idx]).backward()
        opt.step()

    for i in range(cfg["iterations"]):
        step(i)
    start = time.perf_counter()
    for i in range(cfg["iterations"]):
        step(i)
    if rank == 0:
        queue.put(cfg["iterations"] * b * world / (time.perf_counter() - start))
    if world > 1:
        dist.destroy_process_group()


if __name__ == "__main__":
    cfg = json.loads(sys.argv[1])
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=run, args=(r, cfg, queue)) for r in range(cfg["world"])]
    for p in procs:
        p.start()
    rate = queue.get()
    for p in procs:
        p.join()
    print(json.dumps({"imagesPerSecond": rate}))
