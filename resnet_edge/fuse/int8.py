"""Swap the blocks of a ModelOpt-calibrated ResNet for ``resnet_edge::int8_residual_block`` calls.

The INT8 counterpart of ``fuse_model``: the TensorRT backend folds BatchNorm, calibrates with
ModelOpt (``resnet_edge.quantize.modelopt_ptq.calibrate``), and then hands every block, with its
folded weights and calibrated ranges, to one op whose converter carries the Q/DQ into TensorRT.
The stem convolution and the classifier keep their ModelOpt quantizers.
"""

from __future__ import annotations

import copy
from typing import Optional

import torch
from torch import Tensor, nn

from ..core.defaults import RESIDUAL_QUANTIZER
from ..core.errors import UsageError
from ..models.blocks import ZeroPadShortcut
from ..models.resnet import ResNet
from ..ops.int8_block import int8_residual_block


def _amax(module: nn.Module, quantizer_name: str) -> Optional[Tensor]:
    """The calibrated range of ``module.<quantizer_name>``, or None where it is absent or disabled.

    Duck-typed (``is_enabled``, ``amax``): this layer sits below ``quantize`` and does not import ModelOpt.
    """
    quantizer = getattr(module, quantizer_name, None)
    if quantizer is None or not quantizer.is_enabled or getattr(quantizer, "amax", None) is None:
        return None
    return quantizer.amax.detach().clone().float()


def _conv_parts(conv: nn.Conv2d) -> tuple[Tensor, Tensor, Optional[Tensor], Optional[Tensor]]:
    if conv.bias is None:
        raise UsageError("fuse_quantized_model needs BatchNorm folded into the convolutions first (fold_batchnorm)")
    return conv.weight.detach().clone(), conv.bias.detach().clone(), _amax(conv, "input_quantizer"), _amax(conv, "weight_quantizer")


class Int8FusedBlock(nn.Module):
    """One calibrated ``BasicBlock``/``Bottleneck`` as a single ``resnet_edge::int8_residual_block`` call.

    Weights and ranges are buffers (inference only); a range that is None (a layer left in higher
    precision) stays None, and the op then leaves that tensor in float.
    """

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        names = [name for name in ("conv1", "conv2", "conv3") if isinstance(getattr(block, name, None), nn.Conv2d)]
        for other in ("bn1", "bn2", "bn3"):
            if isinstance(getattr(block, other, None), nn.BatchNorm2d):
                raise UsageError("fuse_quantized_model needs BatchNorm folded into the convolutions first (fold_batchnorm)")
        self.num_convs = len(names)
        self.strides = [getattr(block, name).stride[0] for name in names]
        for index, name in enumerate(names):
            for part, tensor in zip(("weight", "bias", "input_amax", "weight_amax"), _conv_parts(getattr(block, name))):
                self.register_buffer(f"{part}{index}", tensor)
        shortcut = block.downsample
        if isinstance(shortcut, nn.Sequential) and isinstance(shortcut[0], nn.Conv2d) and all(
            isinstance(rest, nn.Identity) for rest in shortcut[1:]
        ):
            parts = _conv_parts(shortcut[0])
        elif shortcut is None or isinstance(shortcut, ZeroPadShortcut):
            parts = (None, None, None, None)
        else:
            raise UsageError(f"cannot fuse a calibrated block whose shortcut is a {type(shortcut).__name__}")
        for part, tensor in zip(("shortcut_weight", "shortcut_bias", "shortcut_input_amax", "shortcut_weight_amax"), parts):
            self.register_buffer(part, tensor)
        self.register_buffer("residual_amax", _amax(block, RESIDUAL_QUANTIZER))
        self.residual = bool(block.residual)

    def _buffers_of(self, part: str) -> list[Optional[Tensor]]:
        return [getattr(self, f"{part}{index}") for index in range(self.num_convs)]

    def forward(self, x: Tensor) -> Tensor:
        return int8_residual_block(
            x,
            self._buffers_of("weight"),
            self._buffers_of("bias"),
            self._buffers_of("input_amax"),
            self._buffers_of("weight_amax"),
            self.strides,
            self.shortcut_weight,
            self.shortcut_bias,
            self.shortcut_input_amax,
            self.shortcut_weight_amax,
            self.residual_amax,
            self.residual,
        )


def fuse_quantized_model(quantized: nn.Module) -> nn.Module:
    """A copy of a calibrated, BN-folded registry ResNet with every block as an ``Int8FusedBlock``.

    ``quantized`` is what ``modelopt_ptq.calibrate`` returns for ``fold_batchnorm(model)``; its
    outputs and the copy's are the same fake-quant INT8 computation. The stem and classifier keep
    their ModelOpt quantizers, so the copy exports for TensorRT the same way (``export_for_tensorrt``).
    """
    if not isinstance(quantized, ResNet):
        raise UsageError(f"fuse_quantized_model takes a ResNet of the model registry, not a {type(quantized).__name__}")
    fused = copy.deepcopy(quantized).eval()
    for stage in fused.stages():
        for index, block in enumerate(stage):
            stage[index] = Int8FusedBlock(block)
    return fused


def count_int8_blocks(program: torch.export.ExportedProgram) -> int:
    """How many ``resnet_edge::int8_residual_block`` nodes an exported graph holds."""
    target = torch.ops.resnet_edge.int8_residual_block.default
    return sum(1 for node in program.graph.nodes if node.op == "call_function" and node.target is target)
