"""An independent Python implementation of the networks torchvision lacks, written from the papers:
CIFAR ResNets (6n+2) with shortcut options A/B/C, plain twins, pre-activation basic and bottleneck blocks,
and the shortcut scale λ. Module names follow torchvision's, so one safetensors file fits both."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class Shortcut(nn.Module):
    def __init__(self, cin, cout, stride, option, scale, project_bn):
        super().__init__()
        self.option, self.scale, self.stride, self.pad = option, scale, stride, cout - cin
        changes = stride != 1 or cin != cout
        self.project = option == "C" or (option == "B" and changes)

    def forward(self, x, downsample):
        if self.project:
            y = downsample(x)
        else:
            y = x
            if self.option == "A":
                if self.stride > 1:
                    y = y[:, :, :: self.stride, :: self.stride]
                if self.pad > 0:  # zeros appended after the input's own channels
                    y = F.pad(y, (0, 0, 0, 0, 0, self.pad))
        return y * self.scale


def projection(cin, cout, stride, bn):
    layers = [nn.Conv2d(cin, cout, 1, stride, bias=False)]
    if bn:
        layers.append(nn.BatchNorm2d(cout))
    return nn.Sequential(*layers)


class Basic(nn.Module):
    def __init__(self, cin, planes, stride, option, scale, preact, paper_stride):
        super().__init__()
        self.preact, self.plain = preact, option == "none"
        if preact:
            self.bn1 = nn.BatchNorm2d(cin)
            self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        else:
            self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
        self.sc = Shortcut(cin, planes, stride, option, scale, not preact)
        if self.sc.project:
            self.downsample = projection(cin, planes, stride, not preact)

    def forward(self, x):
        ds = getattr(self, "downsample", None)
        if self.preact:
            pre = F.relu(self.bn1(x))
            out = self.conv2(F.relu(self.bn2(self.conv1(pre))))
            return out if self.plain else out + self.sc(pre if self.sc.project else x, ds)
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(out if self.plain else out + self.sc(x, ds))


class Bottleneck(nn.Module):
    def __init__(self, cin, planes, stride, option, scale, preact, paper_stride, groups=1, width_per_group=64):
        super().__init__()
        self.preact, self.plain = preact, option == "none"
        cout = planes * 4
        width = int(planes * (width_per_group / 64.0)) * groups  # torchvision's ResNeXt / Wide ResNet bottleneck
        s1, s3 = (stride, 1) if paper_stride else (1, stride)
        if preact:
            self.bn1 = nn.BatchNorm2d(cin)
            self.conv1 = nn.Conv2d(cin, width, 1, s1, bias=False)
            self.bn2 = nn.BatchNorm2d(width)
            self.conv2 = nn.Conv2d(width, width, 3, s3, 1, groups=groups, bias=False)
            self.bn3 = nn.BatchNorm2d(width)
            self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        else:
            self.conv1 = nn.Conv2d(cin, width, 1, s1, bias=False)
            self.bn1 = nn.BatchNorm2d(width)
            self.conv2 = nn.Conv2d(width, width, 3, s3, 1, groups=groups, bias=False)
            self.bn2 = nn.BatchNorm2d(width)
            self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(cout)
        self.sc = Shortcut(cin, cout, stride, option, scale, not preact)
        if self.sc.project:
            self.downsample = projection(cin, cout, stride, not preact)

    def forward(self, x):
        ds = getattr(self, "downsample", None)
        if self.preact:
            pre = F.relu(self.bn1(x))
            out = self.conv2(F.relu(self.bn2(self.conv1(pre))))
            out = self.conv3(F.relu(self.bn3(out)))
            return out if self.plain else out + self.sc(pre if self.sc.project else x, ds)
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out if self.plain else out + self.sc(x, ds))


class Net(nn.Module):
    def __init__(self, block, depths, widths, stem, option, preact=False, in_ch=3, classes=10, scale=1.0,
                 paper_stride=False, groups=1, width_per_group=64):
        super().__init__()
        self.stem, self.preact = stem, preact
        w0 = widths[0]
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(in_ch, w0, 7, 2, 3, bias=False)
        else:
            self.conv1 = nn.Conv2d(in_ch, w0, 3, 1, 1, bias=False)
        if not (preact and stem == "cifar"):
            self.bn1 = nn.BatchNorm2d(w0)
        B = Basic if block == "basic" else Bottleneck
        exp = 1 if block == "basic" else 4
        c = w0
        for s, (d, w) in enumerate(zip(depths, widths)):
            blocks = []
            for b in range(d):
                grouping = {"groups": groups, "width_per_group": width_per_group} if block != "basic" else {}
                blocks.append(B(c, w, 2 if (s > 0 and b == 0) else 1, option, scale, preact, paper_stride, **grouping))
                c = w * exp
            setattr(self, f"layer{s + 1}", nn.Sequential(*blocks))
        self.nstages = len(depths)
        if preact:
            self.bn_final = nn.BatchNorm2d(c)
        self.fc = nn.Linear(c, classes)

    def forward(self, x):
        x = self.conv1(x)
        if hasattr(self, "bn1"):
            x = F.relu(self.bn1(x))
        if self.stem == "imagenet":
            x = F.max_pool2d(x, 3, 2, 1)
        for s in range(self.nstages):
            x = getattr(self, f"layer{s + 1}")(x)
        if self.preact:
            x = F.relu(self.bn_final(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


# torchvision's ImageNet ResNets as (block, depths): the same structure (projection shortcuts, stride in the 3x3
# of a bottleneck) and parameter names, for a PyTorch that comes without torchvision (the GPU machine's).
IMAGENET = {
    "resnet18": ("basic", [2, 2, 2, 2]),
    "resnet34": ("basic", [3, 4, 6, 3]),
    "resnet50": ("bottleneck", [3, 4, 6, 3]),
    "resnet101": ("bottleneck", [3, 4, 23, 3]),
    "resnet152": ("bottleneck", [3, 8, 36, 3]),
    "resnext50_32x4d": ("bottleneck", [3, 4, 6, 3], 32, 4),
    "resnext101_32x8d": ("bottleneck", [3, 4, 23, 3], 32, 8),
    "resnext101_64x4d": ("bottleneck", [3, 4, 23, 3], 64, 4),
    "wide_resnet50_2": ("bottleneck", [3, 4, 6, 3], 1, 128),
    "wide_resnet101_2": ("bottleneck", [3, 4, 23, 3], 1, 128),
}


def imagenet_model(arch, classes):
    """torchvision's model where torchvision is installed, otherwise the same network built here."""
    try:
        import torchvision
    except ImportError:
        block, depths, *grouping = IMAGENET[arch]
        return Net(block, depths, [64, 128, 256, 512], "imagenet", "B", classes=classes,
                   **dict(zip(["groups", "width_per_group"], grouping)))
    return getattr(torchvision.models, arch)(num_classes=classes)
