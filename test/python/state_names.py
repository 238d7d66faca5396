"""Names and shapes of torchvision's state_dict for each ImageNet ResNet, ResNeXt and Wide ResNet, and parameter counts."""
import json

import torchvision

out = {}
for arch in ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d", "resnext101_32x8d",
             "resnext101_64x4d", "wide_resnet50_2", "wide_resnet101_2"]:
    m = getattr(torchvision.models, arch)(num_classes=1000)
    out[arch] = {
        "state": [[k, list(v.shape)] for k, v in m.state_dict().items()],
        "params": sum(p.numel() for p in m.parameters()),
    }
print(json.dumps(out))
