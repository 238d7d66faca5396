"""Each rank's share of one epoch as torch.utils.data.DistributedSampler draws it, from a given epoch order: the
sampler runs unshuffled over positions in that order (its padding and striding), and the positions map back.
usage: sampler_shares.py JSON   (JSON: order, world)   prints [[indices of rank 0], [rank 1], ...]"""
import json
import sys

from torch.utils.data import DistributedSampler

cfg = json.loads(sys.argv[1])
order, world = cfg["order"], cfg["world"]
shares = [[order[i] for i in DistributedSampler(range(len(order)), num_replicas=world, rank=r, shuffle=False)]
          for r in range(world)]
print(json.dumps(shares))
