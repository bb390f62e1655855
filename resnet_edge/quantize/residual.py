"""Q/DQ on the residual add: ModelOpt quantizes the shortcut input of each ResNet block.

TensorRT can only fuse ``conv + add (+ relu)`` into one INT8 kernel when both add inputs carry Q/DQ
(NVIDIA/TensorRT#1992, and TensorRT's "Q/DQ layer placement" guide); without it the add runs in
FP32/FP16 and every block pays a re-quantization. So the blocks of ``resnet_edge.models`` get one
more quantizer, ``residual_quantizer`` (``core.defaults.RESIDUAL_QUANTIZER``), through ModelOpt's
documented extension point ``mtq.register(original_cls, quantized_cls)``.
"""

from __future__ import annotations

import contextlib

import torch

from ..core.defaults import RESIDUAL_QUANTIZER
from ..models.blocks import BasicBlock, Bottleneck
from .modelopt_import import require_modelopt


def _residual_setup(self) -> None:
    mtq = require_modelopt()
    # A plain net (no shortcut) has no add to quantize.
    if getattr(self, "residual", False):
        self._register_temp_attribute(RESIDUAL_QUANTIZER, mtq.nn.TensorQuantizer(mtq.tensor_quant.QUANT_DESC_8BIT_PER_TENSOR))


def _shortcut(self, x: torch.Tensor) -> torch.Tensor:
    identity = x if self.downsample is None else self.downsample(x)
    return getattr(self, RESIDUAL_QUANTIZER)(identity)


def _quant_basic_forward(self, x: torch.Tensor) -> torch.Tensor:
    # resnet_edge.models.blocks.BasicBlock.forward with Q/DQ on the shortcut input of the add.
    out = self.relu(self.bn1(self.conv1(x)))
    out = self.bn2(self.conv2(out))
    if self.residual:
        out = out + _shortcut(self, x)
    return self.relu(out)


def _quant_bottleneck_forward(self, x: torch.Tensor) -> torch.Tensor:
    # resnet_edge.models.blocks.Bottleneck.forward with Q/DQ on the shortcut input of the add.
    out = self.relu(self.bn1(self.conv1(x)))
    out = self.relu(self.bn2(self.conv2(out)))
    out = self.bn3(self.conv3(out))
    if self.residual:
        out = out + _shortcut(self, x)
    return self.relu(out)


_REGISTERED: set[type] = set()


def register_residual_quantization() -> None:
    """Teach ModelOpt to quantize the blocks of ``resnet_edge.models`` with a ``residual_quantizer``.

    The quantized class has a ``_setup`` that creates the quantizer and a ``forward`` that calls it.
    Idempotent. ModelOpt's own conv/linear quantizers inside the block are untouched.
    """
    mtq = require_modelopt()
    for original, forward in ((BasicBlock, _quant_basic_forward), (Bottleneck, _quant_bottleneck_forward)):
        if original in _REGISTERED:
            continue
        quantized = type(f"QuantResidual{original.__name__}", (mtq.nn.QuantModule,), {"_setup": _residual_setup, "forward": forward})
        with contextlib.suppress(KeyError, ValueError, AssertionError):
            mtq.unregister(original)  # a stale registration from an earlier import of this module
        mtq.register(original_cls=original, quantized_cls=quantized)
        _REGISTERED.add(original)


__all__ = ["register_residual_quantization"]
