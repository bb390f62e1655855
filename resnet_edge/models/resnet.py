"""The ResNet trunk shared by the ImageNet and CIFAR families of the paper.

ImageNet (§3.4, Table 1): 7x7/64 stride-2 conv, 3x3 max-pool, four stages of 64/128/256/512 filters.
CIFAR-10 (§4.2): 3x3/16 conv, three stages of 16/32/64 filters on 32/16/8-pixel maps.
Both end in global average pooling and one fully connected layer. Module names match torchvision.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .blocks import BasicBlock, Bottleneck

FAMILY_STAGE_WIDTHS = {"imagenet": (64, 128, 256, 512), "cifar": (16, 32, 64)}


class ResNet(nn.Module):
    """A residual (or, with ``shortcut=None``, plain) network of He et al. 2015.

    Args:
        block: ``BasicBlock`` or ``Bottleneck``.
        layers: blocks per stage, e.g. ``(3, 4, 6, 3)`` for ResNet-50 or ``(3, 3, 3)`` for ResNet-20.
        family: ``"imagenet"`` (7x7 stem + max-pool, 4 stages) or ``"cifar"`` (3x3 stem, 3 stages).
        num_classes: width of the final fully connected layer.
        shortcut: ``"A"``, ``"B"``, ``"C"`` or ``None`` (plain net); see ``blocks``.
    """

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        layers: Sequence[int],
        family: str = "imagenet",
        num_classes: int = 1000,
        shortcut: str | None = "B",
    ) -> None:
        super().__init__()
        widths = FAMILY_STAGE_WIDTHS[family]
        if len(layers) != len(widths):
            raise ValueError(f"the {family} family has {len(widths)} stages, got {len(layers)} block counts")
        self.family = family
        self.shortcut = shortcut
        stem_width = widths[0]
        if family == "imagenet":
            self.conv1 = nn.Conv2d(3, stem_width, kernel_size=7, stride=2, padding=3, bias=False)
        else:
            self.conv1 = nn.Conv2d(3, stem_width, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem_width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1) if family == "imagenet" else nn.Identity()
        in_planes = stem_width
        for index, (width, blocks) in enumerate(zip(widths, layers)):
            stride = 1 if index == 0 else 2
            stage = []
            for block_index in range(blocks):
                stage.append(block(in_planes, width, stride if block_index == 0 else 1, shortcut))
                in_planes = width * block.expansion
            setattr(self, f"layer{index + 1}", nn.Sequential(*stage))
        self.num_stages = len(widths)
        if self.num_stages == 3:
            # A parameter-free placeholder keeps forward() one straight line that TorchScript compiles.
            self.layer4 = nn.Identity()
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(in_planes, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        # He initialisation (the paper's ref. [13]), as torchvision does.
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def stages(self) -> list[nn.Sequential]:
        """The residual stages ``layer1..layerN`` in order."""
        return [getattr(self, f"layer{i + 1}") for i in range(self.num_stages)]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Everything before global pooling: stem and residual stages."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.forward_features(x))
        return self.fc(torch.flatten(x, 1))
