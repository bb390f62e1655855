"""Registry models with non-trivial BatchNorm statistics, shared by the fusion tests and the GPU benchmark."""

from __future__ import annotations

import torch
from torch import nn

from resnet_edge.models import create_model


def trained_like(name: str, shortcut: str | None = None, seed: int = 0) -> nn.Module:
    """A registry net in eval mode whose BatchNorms hold non-trivial statistics, so folding matters."""
    torch.manual_seed(seed)
    model = create_model(name, shortcut=shortcut).eval()
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 2.0)
            nn.init.uniform_(module.weight, 0.5, 1.0)
            nn.init.uniform_(module.bias, -0.2, 0.2)
    for stage in model.stages():
        for block in stage:
            if block.residual:
                # A small last-BN scale on each residual branch, as training tends to learn, keeps
                # hundreds of summed blocks (resnet1202) finite.
                last_bn = block.bn3 if hasattr(block, "bn3") else block.bn2
                nn.init.uniform_(last_bn.weight, 0.05, 0.2)
    return model
