"""Helpers shared by the Python references: a safetensors writer of our own (no library needed),
raw float32 dumps, and seeded non-trivial BN statistics so that eval-mode comparisons mean something."""
import json
import os
import struct

import torch

# As the addon does (native/device/runtime.cpp): oneDNN 3.x (PyTorch 2.x) divides by the CPU's cache sizes in its
# convolutions and dies of SIGFPE where the CPU reports none (some VMs). The references then use PyTorch's own.
if int(torch.__version__.split(".")[0]) >= 2 and not os.path.exists("/sys/devices/system/cpu/cpu0/cache/index0/size"):
    torch.backends.mkldnn.enabled = False

DTYPES = {torch.float32: "F32", torch.int64: "I64", torch.float64: "F64", torch.uint8: "U8", torch.int32: "I32"}


def save_safetensors(path, tensors, metadata=None):
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        raw = t.numpy().tobytes()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * ((8 - (8 + len(text)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def load_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    meta = header.pop("__metadata__", {})
    kinds = {v: k for k, v in DTYPES.items()}
    out = {}
    for name, e in header.items():
        b, end = e["data_offsets"]
        t = torch.frombuffer(bytearray(data[8 + n + b : 8 + n + end]), dtype=kinds[e["dtype"]])
        out[name] = t.reshape(e["shape"]) if e["shape"] else t.reshape(())
    return out, meta


def save_raw(path, t):
    with open(path, "wb") as f:
        f.write(t.detach().contiguous().cpu().float().numpy().tobytes())


def perturb_batchnorm(model, gen):
    """Random affine parameters and running statistics, so that BN is not the identity in eval mode."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) * 0.5 + 0.75)
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) * 0.5 + 0.75)
