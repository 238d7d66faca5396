"""Each rank's share of one epoch as timm's RepeatAugSampler draws it (num_repeats R, selected_round S), from a
given epoch order: the sampler runs unshuffled over positions in that order (repeat_interleave, padding, striding,
the first num_selected_samples of the rank's part), and the positions map back.
usage: repeat_aug_shares.py JSON   (JSON: order, world, repeats, round)   prints [[indices of rank 0], [rank 1], ...]"""
import json
import sys

from timm.data.distributed_sampler import RepeatAugSampler

cfg = json.loads(sys.argv[1])
order, world, repeats, selected_round = cfg["order"], cfg["world"], cfg["repeats"], cfg["round"]
shares = [
    [order[i] for i in RepeatAugSampler(range(len(order)), num_replicas=world, rank=r, shuffle=False,
                                        num_repeats=repeats, selected_round=selected_round)]
    for r in range(world)
]
print(json.dumps(shares))
