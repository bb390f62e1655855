"""Inference modules that run one whole residual block as a single ``resnet_edge`` op."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .. import ops  # registers torch.ops.resnet_edge.* (when the extension is built), needed to call or script them
from ..core.errors import UsageError
from ..models.blocks import BasicBlock, Bottleneck, ZeroPadShortcut
from .fold import fold_conv_bn


class _FusedBlock(nn.Module):
    """The folded parameters of one block, held as buffers: the module is inference-only, and
    buffers still follow ``.to()``, ``.half()``, ``state_dict()`` and TorchScript.

    ``conv{i}_weight``/``conv{i}_bias`` fold ``block.conv{i}``/``block.bn{i}``; ``shortcut_*`` fold
    a projection shortcut and are None for the identity, option A (zero-pad) and plain blocks.
    """

    def __init__(self, block: BasicBlock | Bottleneck, num_convs: int) -> None:
        super().__init__()
        ops.require()  # a fused block without the compiled ops could not run or script
        for index in range(1, num_convs + 1):
            weight, bias = fold_conv_bn(getattr(block, f"conv{index}"), getattr(block, f"bn{index}"))
            self.register_buffer(f"conv{index}_weight", weight)
            self.register_buffer(f"conv{index}_bias", bias)
        shortcut = block.downsample
        if isinstance(shortcut, nn.Sequential) and len(shortcut) == 2:
            weight, bias = fold_conv_bn(shortcut[0], shortcut[1])
        elif shortcut is None or isinstance(shortcut, ZeroPadShortcut):
            weight = bias = None  # the op's parameter-free shortcut covers identity and option A
        else:
            raise UsageError(f"cannot fuse a block whose shortcut is a {type(shortcut).__name__}")
        self.register_buffer("shortcut_weight", weight)
        self.register_buffer("shortcut_bias", bias)
        self.stride = block.stride
        self.residual = block.residual


class FusedBasicBlock(_FusedBlock):
    """A ``BasicBlock`` in eval mode, as one ``resnet_edge::fused_basic_block`` call."""

    def __init__(self, block: BasicBlock) -> None:
        super().__init__(block, num_convs=2)

    def forward(self, x: Tensor) -> Tensor:
        return torch.ops.resnet_edge.fused_basic_block(
            x,
            self.conv1_weight,
            self.conv1_bias,
            self.conv2_weight,
            self.conv2_bias,
            self.shortcut_weight,
            self.shortcut_bias,
            self.stride,
            self.residual,
        )


class FusedBottleneck(_FusedBlock):
    """A ``Bottleneck`` in eval mode, as one ``resnet_edge::fused_bottleneck`` call."""

    def __init__(self, block: Bottleneck) -> None:
        super().__init__(block, num_convs=3)

    def forward(self, x: Tensor) -> Tensor:
        return torch.ops.resnet_edge.fused_bottleneck(
            x,
            self.conv1_weight,
            self.conv1_bias,
            self.conv2_weight,
            self.conv2_bias,
            self.conv3_weight,
            self.conv3_bias,
            self.shortcut_weight,
            self.shortcut_bias,
            self.stride,
            self.residual,
        )


def fuse_block(block: nn.Module) -> FusedBasicBlock | FusedBottleneck:
    """The fused module of one block of the model registry; ``UsageError`` for any other module."""
    # Exact types: a subclass may change forward() in ways the fused op would silently ignore.
    if type(block) is BasicBlock:
        return FusedBasicBlock(block)
    if type(block) is Bottleneck:
        return FusedBottleneck(block)
    raise UsageError(f"cannot fuse a block of type {type(block).__name__}; only BasicBlock and Bottleneck are supported")
