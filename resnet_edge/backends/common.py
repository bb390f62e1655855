"""Pieces more than one backend builds with."""

from __future__ import annotations

import torch
from torch import nn


class FloatIO(nn.Module):
    """float32 in, ``dtype`` inside, float32 logits out.

    How an FP16 artifact (a half TorchScript module, a strongly typed TensorRT graph) keeps float32
    input and output, so callers feed the same tensor at every precision. Scripts with TorchScript.
    """

    def __init__(self, model: nn.Module, dtype: torch.dtype) -> None:
        super().__init__()
        self.model = model
        self.dtype = dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.to(self.dtype)).float()
