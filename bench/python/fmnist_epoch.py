"""The usual torchvision pipeline for one Fashion-MNIST epoch: FashionMNIST dataset with
RandomCrop(28, padding=4) + RandomHorizontalFlip + ToTensor + Normalize, a DataLoader, SGD, then evaluation
on the test set. Times load + train + evaluate.
usage: fmnist_epoch.py RAW_ROOT BATCH WORKERS THREADS MEMORY_FORMAT [MAX_ITERS]"""
import json
import os
import sys
import time

import torch
import torch.nn.functional as F
import torchvision
import torchvision.transforms as T

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "test", "python"))
from reference_nets import Net  # noqa: E402

root, batch, workers, threads, fmt = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
max_iters = int(sys.argv[6]) if len(sys.argv) > 6 else None
torch.set_num_threads(threads)
torch.manual_seed(0)
channels_last = fmt == "channels_last"
start = time.perf_counter()
mean, std = 0.2860, 0.3530
train_tf = T.Compose([T.RandomCrop(28, padding=4), T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize((mean,), (std,))])
test_tf = T.Compose([T.ToTensor(), T.Normalize((mean,), (std,))])
train_set = torchvision.datasets.FashionMNIST(root, train=True, transform=train_tf, download=False)
test_set = torchvision.datasets.FashionMNIST(root, train=False, transform=test_tf, download=False)
loader = torch.utils.data.DataLoader(train_set, batch_size=batch, shuffle=True, num_workers=workers, drop_last=True,
                                     persistent_workers=False)
test_loader = torch.utils.data.DataLoader(test_set, batch_size=500, num_workers=workers)
model = Net("basic", [3, 3, 3], [16, 32, 64], "cifar", "A", in_ch=1, classes=10)
if channels_last:
    model = model.to(memory_format=torch.channels_last)
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
model.train()
images = 0
for i, (x, y) in enumerate(loader):
    if max_iters is not None and i >= max_iters:
        break
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    opt.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    opt.step()
    images += x.shape[0]
train_done = time.perf_counter()
model.eval()
correct = 0
with torch.no_grad():
    for x, y in test_loader:
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        correct += (model(x).argmax(1) == y).sum().item()
end = time.perf_counter()
print(json.dumps({"seconds": end - start, "trainSeconds": train_done - start, "images": images, "testAccuracy": correct / len(test_set)}))
