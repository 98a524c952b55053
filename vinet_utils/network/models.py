"""CIFAR ResNets (3x3 stem, no max-pool, BasicBlocks) and the paper's cut points.

``truncate(model, cut)`` returns the network up to and including a cut point and
shares its weights with ``model``. Cut names are either a variant of ``CUTS`` or a
layer name: ``"layer2"`` (end of a stage), ``"layer3.1"`` (end of a block) or
``"layer3.1.conv1"`` (after that block's conv1 -> bn1 -> relu).
"""

from __future__ import annotations

import re

import torch.nn.functional as F
from torch import nn

ARCHS = ("resnet18", "resnet34")
VARIANTS = ("tiny", "small", "medium", "large")
BLOCKS = {"resnet18": (2, 2, 2, 2), "resnet34": (3, 4, 6, 3)}

#: Cut points that reproduce the paper's "Base Params" column (docs/method.md §2).
CUTS = {
    "resnet18": {"tiny": "layer2", "small": "layer3.1.conv1",
                 "medium": "layer4.0.conv1", "large": "layer4.1.conv1"},
    "resnet34": {"tiny": "layer3.1.conv1", "small": "layer3.3.conv1",
                 "medium": "layer4.1.conv1", "large": "layer4.2.conv1"},
}


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False),
                                          nn.BatchNorm2d(c_out))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(self, blocks, num_classes=10, in_channels=3, width=1.0):
        super().__init__()
        widths = [max(1, round(w * width)) for w in (64, 128, 256, 512)]
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        c = widths[0]
        for i, (n, w) in enumerate(zip(blocks, widths)):
            stage = []
            for j in range(n):
                stage.append(BasicBlock(c, w, stride=2 if (i > 0 and j == 0) else 1))
                c = w
            setattr(self, f"layer{i + 1}", nn.Sequential(*stage))
        self.linear = nn.Linear(c, num_classes)
        self.num_classes, self.in_channels, self.width = num_classes, in_channels, width

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.linear(out)


def resnet18(num_classes: int = 10, in_channels: int = 3, width: float = 1.0) -> ResNet:
    return ResNet(BLOCKS["resnet18"], num_classes, in_channels, width)


def resnet34(num_classes: int = 10, in_channels: int = 3, width: float = 1.0) -> ResNet:
    return ResNet(BLOCKS["resnet34"], num_classes, in_channels, width)


def build(arch: str, num_classes: int = 10, in_channels: int = 3, width: float = 1.0) -> ResNet:
    """Build ``arch`` by name (one of ``ARCHS``)."""
    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {', '.join(ARCHS)} (got {arch!r})")
    return {"resnet18": resnet18, "resnet34": resnet34}[arch](num_classes, in_channels, width)


def cut_table(model: ResNet, arch: str, extra=()) -> list[dict]:
    """Per cut variant, then per layer name in ``extra`` (more cuts, for the ablation
    figure): the layer, the base parameters kept and the 3x3 convs removed."""
    total, convs = count_params(model), conv_layers(model)
    rows = []
    for variant, layer in [*CUTS[arch].items(), *((c, c) for c in extra)]:
        base = truncate(model, layer)
        rows.append({"variant": variant, "cut": layer, "base_params": count_params(base),
                     "base_fraction": round(count_params(base) / total, 4),
                     "convs_removed": convs - conv_layers(base)})
    rows.append({"variant": "full", "cut": "-", "base_params": total, "base_fraction": 1.0,
                 "convs_removed": 0})
    return rows


def removed_pct(model: ResNet, arch: str, variant: str) -> float:
    """The share (%) of ``model``'s 3x3 convs removed at the cut ``variant`` (a variant's
    name or a layer's), the x axis of the paper's ablation figure."""
    convs = conv_layers(model)
    return 100 * (convs - conv_layers(truncate(model, resolve_cut(arch, variant)))) / convs


class ConvBNReLU(nn.Module):
    """conv -> bn -> relu built from existing modules (weights are shared): the stem of
    a ResNet, or the first half of a BasicBlock."""

    def __init__(self, conv: nn.Conv2d, bn: nn.BatchNorm2d):
        super().__init__()
        self.conv1, self.bn1 = conv, bn

    def forward(self, x):
        return F.relu(self.bn1(self.conv1(x)))


_CUT_RE = re.compile(r"^layer([1-4])(?:\.(\d+)(\.conv1)?)?$")


def is_layer_name(name) -> bool:
    """Whether ``name`` is written like a cut's layer name (``layer2``, ``layer3.1``,
    ``layer3.1.conv1``); whether the block exists depends on the architecture."""
    return isinstance(name, str) and _CUT_RE.match(name) is not None


def resolve_cut(arch: str, cut: str) -> str:
    """Map a variant name to its layer name; layer names pass through unchanged."""
    if arch not in CUTS:
        raise ValueError(f"arch must be one of {', '.join(ARCHS)} (got {arch!r})")
    return CUTS[arch].get(cut, cut)


def truncate(model: ResNet, cut: str) -> nn.Sequential:
    """The part of ``model`` up to and including ``cut``, sharing its weights."""
    arch = next((a for a, b in BLOCKS.items()
                 if tuple(len(getattr(model, f"layer{i}")) for i in range(1, 5)) == b), None)
    name = resolve_cut(arch, cut) if arch else cut
    m = _CUT_RE.match(name)
    if m is None:
        raise ValueError(f"cut must be one of {', '.join(VARIANTS)} or a layer name like "
                         f"'layer2', 'layer3.1' or 'layer3.1.conv1' (got {cut!r})")
    stage, block, half = int(m.group(1)), m.group(2), bool(m.group(3))
    parts = [ConvBNReLU(model.conv1, model.bn1)]
    for i in range(1, stage):
        parts.extend(getattr(model, f"layer{i}"))
    layer = getattr(model, f"layer{stage}")
    if block is None:
        parts.extend(layer)
    else:
        b = int(block)
        if b >= len(layer):
            raise ValueError(f"cut {cut!r}: layer{stage} has only {len(layer)} blocks")
        parts.extend(layer[:b] if half else layer[:b + 1])
        if half:
            parts.append(ConvBNReLU(layer[b].conv1, layer[b].bn1))
    return nn.Sequential(*parts)


def count_params(module: nn.Module) -> int:
    """Number of parameters of ``module`` (shared tensors counted once)."""
    return sum(p.numel() for p in {id(p): p for p in module.parameters()}.values())


def conv_layers(module: nn.Module) -> int:
    """Number of 3x3 convolutions in ``module`` (the paper's 'layers removed' axis)."""
    return sum(1 for m in module.modules()
               if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3))
