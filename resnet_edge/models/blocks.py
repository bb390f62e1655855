"""Residual and plain building blocks of He et al. 2015, with torchvision's module names.

Attribute names (``conv1``, ``bn1``, ..., ``downsample``) follow ``torchvision.models.resnet`` so a
torchvision ``state_dict`` loads with ``strict=True``. The shortcut is chosen per block:

* ``"A"``  identity, zero-padded along channels and subsampled by the stride where shapes change
  (parameter-free; the paper's CIFAR nets),
* ``"B"``  identity, with a 1x1 projection + BN only where shapes change (torchvision's choice),
* ``"C"``  a 1x1 projection + BN on every block,
* ``None`` no shortcut at all: the paper's plain nets.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

SHORTCUT_OPTIONS = ("A", "B", "C")


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution with padding, no bias (a BatchNorm follows)."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """1x1 convolution, no bias (a BatchNorm follows)."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class ZeroPadShortcut(nn.Module):
    """Option A: subsample by ``stride`` and zero-pad the extra channels; has no parameters."""

    def __init__(self, in_planes: int, out_planes: int, stride: int) -> None:
        super().__init__()
        if out_planes < in_planes:
            raise ValueError("option A shortcuts cannot reduce the channel count; use option B or C")
        self.stride = stride
        self.extra_channels = out_planes - in_planes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return zero_pad_shortcut(x, self.stride, self.extra_channels)


def zero_pad_shortcut(x: torch.Tensor, stride: int, extra_channels: int) -> torch.Tensor:
    """Option A on a tensor: subsample by ``stride``, append ``extra_channels`` zero channels."""
    if stride != 1:
        x = x[:, :, ::stride, ::stride]
    if extra_channels:
        x = F.pad(x, (0, 0, 0, 0, 0, extra_channels))
    return x


def make_shortcut(shortcut: str | None, in_planes: int, out_planes: int, stride: int) -> nn.Module | None:
    """Return the ``downsample`` module for one block, or ``None`` for the identity / no shortcut."""
    if shortcut is None:
        return None
    if shortcut not in SHORTCUT_OPTIONS:
        raise ValueError(f"unknown shortcut option {shortcut!r}; choose one of {', '.join(SHORTCUT_OPTIONS)}")
    shapes_change = stride != 1 or in_planes != out_planes
    if shortcut == "C" or (shortcut == "B" and shapes_change):
        return nn.Sequential(conv1x1(in_planes, out_planes, stride), nn.BatchNorm2d(out_planes))
    if shortcut == "A" and shapes_change:
        return ZeroPadShortcut(in_planes, out_planes, stride)
    return None


class BasicBlock(nn.Module):
    """Two 3x3 convolutions; ``y = relu(F(x) + shortcut(x))``, or ``relu(F(x))`` in a plain net."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1, shortcut: str | None = "B") -> None:
        super().__init__()
        self.conv1 = conv3x3(in_planes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = make_shortcut(shortcut, in_planes, planes, stride)
        self.residual = shortcut is not None
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.residual:
            out = out + (x if self.downsample is None else self.downsample(x))
        return self.relu(out)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand (x4); the stride sits on the 3x3 as in torchvision's V1.5."""

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1, shortcut: str | None = "B") -> None:
        super().__init__()
        out_planes = planes * self.expansion
        self.conv1 = conv1x1(in_planes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, out_planes)
        self.bn3 = nn.BatchNorm2d(out_planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = make_shortcut(shortcut, in_planes, out_planes, stride)
        self.residual = shortcut is not None
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.residual:
            out = out + (x if self.downsample is None else self.downsample(x))
        return self.relu(out)


def block_names(model: nn.Module) -> list[str]:
    """The residual blocks of ``model`` in order, by module name (``layer1.0``...): the rows of
    ``diagnose``, ``bench --profile`` and ``sensitivity``."""
    return [name for name, module in model.named_modules() if isinstance(module, (BasicBlock, Bottleneck))]
