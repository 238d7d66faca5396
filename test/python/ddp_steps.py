"""PyTorch's DistributedDataParallel on the same weights and data, as the reference for our distributed training:
WORLD processes on 127.0.0.1 with Gloo, DistributedSampler (shuffle off), the same per-rank batch, SGD, pixels / 255
and the given per-channel normalisation, in float32 or (`dtype`) float64; every rank writes its weights after the
steps. With `accumulate` k, a step
is k batches, the first k - 1 under ddp.no_sync() and each loss divided by k: PyTorch's accumulation recipe.
usage: ddp_steps.py WEIGHTS DATA OUT_PREFIX JSON   (JSON: spec, optimizer, batch, steps, mean, std, world, port,
accumulate, dtype). Launched by torchrun (TORCHELASTIC_RUN_ID set), it is one rank of the launcher's job instead: the
rank, world and rendezvous from torchrun's environment (env://), `world` and `port` unused.
"""
import contextlib
import json
import os
import sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from common import load_safetensors, save_safetensors
from reference_nets import Net


def run(rank, weights_file, data_file, out_prefix, cfg, torchrun=False):
    if torchrun:
        dist.init_process_group("gloo")
    else:
        os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(cfg["port"])
        # Debian's PyTorch 2.x is built without libuv, which its TCPStore asks for by default from 2.4 on.
        os.environ.setdefault("USE_LIBUV", "0")
        dist.init_process_group("gloo", rank=rank, world_size=cfg["world"])
    torch.set_num_threads(1)
    spec = cfg["spec"]
    model = Net(spec["block"], spec["depths"], spec["widths"], spec["stem"], spec["shortcut"], spec.get("preact", False),
                spec.get("inChannels", 3), spec.get("numClasses", 10))
    dtype = getattr(torch, cfg.get("dtype", "float32"))  # float64: the model converted before its weights load
    model = model.to(dtype)
    state, _ = load_safetensors(weights_file)
    model.load_state_dict(state, strict=True)
    model.train()
    ddp = DDP(model)
    data, _ = load_safetensors(data_file)
    loader = DataLoader(TensorDataset(data["images"], data["labels"]), batch_size=cfg["batch"],
                        sampler=DistributedSampler(TensorDataset(data["labels"]), shuffle=False))
    mean = torch.tensor(cfg["mean"], dtype=dtype).view(1, -1, 1, 1)
    std = torch.tensor(cfg["std"], dtype=dtype).view(1, -1, 1, 1)
    o = cfg["optimizer"]
    opt = torch.optim.SGD(ddp.parameters(), lr=o["lr"], momentum=o.get("momentum", 0), weight_decay=o.get("weightDecay", 0))
    batches = iter(loader)
    k = cfg.get("accumulate", 1)
    for _ in range(cfg["steps"]):
        opt.zero_grad(set_to_none=True)
        for i in range(k):
            images, labels = next(batches)
            with ddp.no_sync() if i + 1 < k else contextlib.nullcontext():
                loss = F.cross_entropy(ddp((images.to(dtype) / 255 - mean) / std), labels) / k
                loss.backward()
        opt.step()
    save_safetensors(f"{out_prefix}{rank}.safetensors", {k: v.contiguous() for k, v in model.state_dict().items()})
    dist.destroy_process_group()


if __name__ == "__main__":
    weights_file, data_file, out_prefix, cfg = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
    if "TORCHELASTIC_RUN_ID" in os.environ:
        run(int(os.environ["RANK"]), weights_file, data_file, out_prefix, cfg, torchrun=True)
    else:
        mp.spawn(run, args=(weights_file, data_file, out_prefix, cfg), nprocs=cfg["world"], join=True)
