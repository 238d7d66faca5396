"""PyTorch's own training steps on the same weights and batches: torch.optim.SGD / AdamW (timm's Lamb), cross-entropy
(with label smoothing), batches taken in order, pixels / 255 and the given per-channel normalisation; optionally
gradient accumulation over chunks of each batch and torch.nn.utils.clip_grad_norm_; in float32 or (`dtype`)
float64, the whole computation in it, or (`autocast`: "bfloat16") the forward under torch.autocast on the device, the
loss on float32 logits. With `ranks` R (the
reference for SyncBatchNorm), BatchNorm sees the whole batch while every convolution and the classifier run on
each rank's share of it (every R-th sample, as DistributedSampler deals them), one thread: the shapes the ranks
compute with, so that float32 rounds alike and no ReLU input near 0 falls on another side than in the ranks.
usage: train_steps.py WEIGHTS DATA OUT JSON"""
import json
import sys

import torch
import torch.nn.functional as F

from common import load_safetensors, save_safetensors
from reference_nets import Net

weights_file, data_file, out_file, cfg = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
ranks = cfg.get("ranks", 1)
torch.set_num_threads(1 if ranks > 1 else 2)
spec = cfg["spec"]
if spec.get("deepStem") or spec.get("avgDown") or spec.get("attention", "none") != "none":
    # The Bag-of-Tricks variants and squeeze-and-excitation: timm's own ResNet.
    from timm.models.resnet import BasicBlock, Bottleneck, ResNet
    model = ResNet(block=BasicBlock if spec["block"] == "basic" else Bottleneck, layers=spec["depths"],
                   in_chans=spec.get("inChannels", 3), num_classes=spec.get("numClasses", 10),
                   cardinality=spec.get("groups", 1), base_width=spec.get("widthPerGroup", 64),
                   stem_type="deep" if spec.get("deepStem") else "", stem_width=spec.get("stemWidth", 32),
                   avg_down=spec.get("avgDown", False),
                   block_args={"attn_layer": "se"} if spec.get("attention") == "se" else None,
                   channels=tuple(spec["widths"]))
    for s in range(len(spec["depths"]) + 1, 5):
        setattr(model, f"layer{s}", torch.nn.Identity())  # timm's forward names four stages
else:
    model = Net(spec["block"], spec["depths"], spec["widths"], spec["stem"], spec["shortcut"], spec.get("preact", False),
                spec.get("inChannels", 3), spec.get("numClasses", 10), spec.get("shortcutScale", 1.0),
                spec.get("stride") == "conv1x1", spec.get("groups", 1), spec.get("widthPerGroup", 64))
# With `reluMargin`, the smallest |input| any ReLU saw: the reference comparisons of a float32 run need inputs on
# which no ReLU input lies within float32 rounding of 0 (the side it falls on would decide the gradient).
margin = [float("inf")]
if cfg.get("reluMargin"):
    relu = F.relu

    def recording_relu(x, *args, **kwargs):
        margin[0] = min(margin[0], x.detach().abs().min().item())
        return relu(x, *args, **kwargs)
    F.relu = recording_relu


def per_rank(layer):
    forward = layer.forward

    def split(x):
        parts = [forward(x[r::ranks].contiguous()) for r in range(ranks)]
        out = x.new_empty((x.size(0),) + parts[0].shape[1:])
        for r in range(ranks):
            out[r::ranks] = parts[r]
        return out
    layer.forward = split


if ranks > 1:
    for m in model.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            per_rank(m)
# float64 (`dtype`): the model converted before its weights load, so that float64 weights keep every digit.
dtype = getattr(torch, cfg.get("dtype", "float32"))
model = model.to(dtype)
state, _ = load_safetensors(weights_file)
model.load_state_dict(state, strict=True)
device = torch.device(cfg.get("device", "cpu"))
if device.type == "cuda":
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
model = model.to(device)
if cfg.get("channelsLast"):
    model = model.to(memory_format=torch.channels_last)
data, _ = load_safetensors(data_file)
images, labels = data["images"].to(device), data["labels"].to(device)
mean = torch.tensor(cfg["mean"], device=device, dtype=dtype).view(1, -1, 1, 1)
std = torch.tensor(cfg["std"], device=device, dtype=dtype).view(1, -1, 1, 1)
o = cfg["optimizer"]
if o["type"] == "sgd":
    opt = torch.optim.SGD(model.parameters(), lr=o["lr"], momentum=o.get("momentum", 0), nesterov=o.get("nesterov", False),
                          weight_decay=o.get("weightDecay", 0))
elif o["type"] == "lamb":
    # timm's Lamb, with timm's parameter groups when BN parameters and biases go without weight decay.
    from timm.optim import Lamb
    wd = o.get("weightDecay", 0.01)
    params = model.parameters()
    if o.get("noDecayOnBnAndBias"):
        params = [{"params": [p for p in model.parameters() if p.ndim > 1], "weight_decay": wd},
                  {"params": [p for p in model.parameters() if p.ndim <= 1], "weight_decay": 0.0}]
    opt = Lamb(params, lr=o["lr"], betas=tuple(o.get("betas", (0.9, 0.999))), eps=o.get("eps", 1e-6), weight_decay=wd,
               max_grad_norm=o.get("maxGradNorm", 1.0) or None, trust_clip=o.get("trustClip", False),
               always_adapt=o.get("alwaysAdapt", False))
else:
    opt = torch.optim.AdamW(model.parameters(), lr=o["lr"], betas=tuple(o.get("betas", (0.9, 0.999))), eps=o.get("eps", 1e-8),
                            weight_decay=o.get("weightDecay", 0.01))
loss_cfg = cfg.get("loss", "cross-entropy")
if loss_cfg == "cross-entropy":
    def criterion(logits, target):
        return F.cross_entropy(logits, target, label_smoothing=cfg.get("labelSmoothing", 0.0))
else:
    # timm's BinaryCrossEntropy (its smoothing and target threshold).
    from timm.loss import BinaryCrossEntropy
    criterion = BinaryCrossEntropy(smoothing=cfg.get("labelSmoothing", 0.0),
                                   target_threshold=loss_cfg.get("targetThreshold"))
model.train()
if cfg.get("freezeBatchNorm"):  # as torchvision's FrozenBatchNorm2d: running statistics, left as they are
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eval()
mixer = None
if cfg.get("mix"):
    # timm's Mixup (mode "batch") on the draws our run reported (`mixDraws`, one per step and pass): its
    # _params_per_batch gives the draw's λ and kind, rand_bbox its box; timm's code mixes the images, corrects λ from
    # the box and makes the soft targets; the loss takes them (SoftTargetCrossEntropy, or the BCE above).
    import timm.data.mixup as timm_mixup
    from timm.loss import SoftTargetCrossEntropy
    m = cfg["mix"]
    # timm's one_hot builds its targets in the default dtype: float64 too when the whole computation is in float64.
    torch.set_default_dtype(dtype if dtype == torch.float64 else torch.float32)
    mixer = timm_mixup.Mixup(mixup_alpha=m["mixupAlpha"], cutmix_alpha=m["cutmixAlpha"], prob=m["prob"],
                             switch_prob=m["switchProb"], mode="batch", correct_lam=m["correctLam"],
                             label_smoothing=cfg.get("labelSmoothing", 0.0), num_classes=spec.get("numClasses", 10))
    draws = iter(cfg["mixDraws"])
    if loss_cfg == "cross-entropy":
        soft = SoftTargetCrossEntropy()
    else:
        soft = BinaryCrossEntropy(target_threshold=loss_cfg.get("targetThreshold"))

    def criterion(logits, target):
        return soft(logits, target)
b = cfg["batch"]
for step in range(cfg["steps"]):
    x = (images[step * b : (step + 1) * b].to(dtype) / 255 - mean) / std
    y = labels[step * b : (step + 1) * b]
    opt.zero_grad()
    # Gradient accumulation as a PyTorch loop writes it: passes over chunks, each mean loss weighted by its share.
    passes = cfg.get("accumulate", 1)
    for xc, yc in zip(x.chunk(passes), y.chunk(passes)):
        if mixer is not None:
            d = next(draws)
            mixer._params_per_batch = lambda d=d: (d["lam"], d["cutmix"])
            box = d.get("box")
            timm_mixup.rand_bbox = lambda *args, box=box, **kwargs: tuple(box)
            weight = len(yc) / len(y)  # the share of the pass, from the labels before they become soft
            xc = xc.clone()
            xc, yc = mixer(xc, yc)
        with torch.autocast(device.type, dtype=getattr(torch, cfg.get("autocast") or "bfloat16"),
                            enabled=bool(cfg.get("autocast"))):
            logits = model(xc)
            logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
            loss = criterion(logits, yc)
        (loss * (weight if mixer is not None else len(yc) / len(y))).backward()
    if cfg.get("clipGradNorm"):
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["clipGradNorm"])
    opt.step()
save_safetensors(out_file, {k: v.contiguous() for k, v in model.state_dict().items()})
if cfg.get("reluMargin"):
    print(json.dumps({"reluMargin": margin[0]}))
