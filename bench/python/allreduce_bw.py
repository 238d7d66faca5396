"""Gloo's all-reduce as c10d runs it (the ProcessGroupGloo our ranks use too), WORLD processes of 1 thread on
127.0.0.1: the median and the fastest seconds of `repeats` all-reduces of float32 tensors of each size, after 2
warm-ups. usage: allreduce_bw.py JSON  ({world, sizes: [bytes], repeats, port}); prints [{bytes, seconds, fastest}]."""
import json
import os
import statistics
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def run(rank, cfg, queue):
    torch.set_num_threads(1)
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(cfg["port"])
    os.environ.setdefault("USE_LIBUV", "0")
    dist.init_process_group("gloo", rank=rank, world_size=cfg["world"])
    rows = []
    for size in cfg["sizes"]:
        t = torch.ones(size // 4)
        times = []
        for i in range(cfg["repeats"] + 2):
            dist.barrier()
            start = time.perf_counter()
            dist.all_reduce(t)
            if i >= 2:
                times.append(time.perf_counter() - start)
        rows.append({"bytes": size, "seconds": statistics.median(times), "fastest": min(times)})
    if rank == 0:
        queue.put(rows)
    dist.destroy_process_group()


if __name__ == "__main__":
    cfg = json.loads(sys.argv[1])
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=run, args=(r, cfg, queue)) for r in range(cfg["world"])]
    for p in procs:
        p.start()
    rows = queue.get()
    for p in procs:
        p.join()
    print(json.dumps(rows))
