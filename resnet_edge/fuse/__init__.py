"""Model rewrites: fold BatchNorm (``fold``) and swap every residual block for a fused C++/CUDA op
(``resnet_edge.ops``).

Importing this package never needs the compiled extension: ``fuse.fold`` is plain PyTorch, and the
fused modules check for the extension when they are built (``ExtensionNotBuiltError``).
"""

from __future__ import annotations

import copy

from torch import nn

from ..core.errors import UsageError
from ..models.resnet import ResNet
from .fold import fold_batchnorm, fold_conv_bn, folded_conv
from .modules import FusedBasicBlock, FusedBottleneck, fuse_block


def fuse_model(model: nn.Module) -> nn.Module:
    """An inference copy of a registry ResNet with every BatchNorm folded and every block fused.

    The stem becomes a convolution with a bias (BN folded) followed by its ReLU; each
    ``BasicBlock``/``Bottleneck`` becomes a ``FusedBasicBlock``/``FusedBottleneck`` that runs the
    whole block, shortcut and final add + ReLU included, as one op. Max-pool, average pool and the
    classifier are kept. The result is still a ``ResNet`` (same ``arch``, ``family``, ``shortcut``)
    that scripts with TorchScript and exports with ``torch.export``; ``model`` is not modified.

    Raises:
        UsageError: ``model`` is not a registry ResNet, is in training mode (folding needs the BN
            running statistics, which eval mode uses), or holds a block or shortcut of an unknown type.
    """
    if not isinstance(model, ResNet):
        raise UsageError(f"fuse_model takes a ResNet of the model registry, not a {type(model).__name__}")
    if model.training:
        raise UsageError("fuse_model needs a model in eval mode (BatchNorm folds its running statistics); call model.eval() first")
    fused = copy.deepcopy(model)
    fused.conv1 = folded_conv(model.conv1, model.bn1)
    fused.bn1 = nn.Identity()
    for stage in fused.stages():
        for index, block in enumerate(stage):
            stage[index] = fuse_block(block)
    return fused


__all__ = ["FusedBasicBlock", "FusedBottleneck", "fold_batchnorm", "fold_conv_bn", "folded_conv", "fuse_block", "fuse_model"]
