"""The graph an AOTInductor package is compiled from: the prepared model, exported with a batch range.

* Prepared: BatchNorm folded; with ``--fused`` every block swapped for its ``resnet_edge::`` op
  (``fuse_model``), which ``torch.export`` keeps as a call to the op (its fake kernel gives the
  shapes), so the package calls the C++ op from the ops library at run time, no Python needed.
* Half precision (GPU): the weights in float16/bfloat16 behind ``FloatIO``, float32 in and out, so
  every bundle takes the same input tensor.
* The batch dimension is a ``torch.export.Dim`` over the bundle's min..max. An example batch of 1
  would specialise it (export treats a size-1 dimension as the constant 1), so the example batch is
  at least 2 whenever the range allows.
* ``with_blocks``: the graph also returns each residual block's output (``diagnose``).
"""

from __future__ import annotations

import logging
from typing import Sequence

import torch
from torch import nn

from ...fuse import fuse_model
from ...fuse.fold import fold_batchnorm
from ..base import BuildConfig
from ..common import FloatIO

log = logging.getLogger(__name__)

HALF_TYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


class BlockOutputs(nn.Module):
    """``model``'s logits followed by the output of each block in ``blocks`` (module names), in order;
    float32 in and out whatever ``dtype`` the model computes in. Forward hooks collect the outputs
    during each call (torch.export traces them like any Python) and are removed after it."""

    def __init__(self, model: nn.Module, blocks: Sequence[str], dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.model = model
        self.dtype = dtype
        self.blocks = list(blocks)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        seen: dict[str, torch.Tensor] = {}
        modules = dict(self.model.named_modules())
        handles = [modules[name].register_forward_hook(lambda _m, _i, out, name=name: seen.__setitem__(name, out))
                   for name in self.blocks]
        try:
            logits = self.model(x.to(self.dtype))
        finally:
            for handle in handles:
                handle.remove()
        return (logits.float(), *(seen[name].float() for name in self.blocks))


def prepare(model: nn.Module, config: BuildConfig, blocks: Sequence[str] = ()) -> nn.Module:
    """A copy of ``model`` ready to export: folded or fused, in the build precision, on the build device."""
    if config.fused:
        log.info("aoti: fusing blocks into resnet_edge ops")
        prepared = fuse_model(model.eval())
    else:
        prepared = fold_batchnorm(model)
    prepared = prepared.to(torch.device(config.device)).eval()
    dtype = HALF_TYPES.get(config.precision, torch.float32)
    if blocks:
        return BlockOutputs(prepared.to(dtype), blocks, dtype).eval()
    if dtype != torch.float32:
        return FloatIO(prepared.to(dtype), dtype).eval()
    return prepared


def example_batch(config: BuildConfig) -> int:
    """The export example's batch size: the opt batch, raised to 2 when the range is dynamic (1 specialises)."""
    batch = config.batch
    if batch.static:
        return batch.min
    return min(max(batch.opt, 2), batch.max)


def export(prepared: nn.Module, config: BuildConfig) -> torch.export.ExportedProgram:
    """``prepared`` exported with the batch dimension ranging over ``config.batch`` (static when fixed)."""
    example = config.example_input(example_batch(config)).to(torch.device(config.device))
    dynamic = None
    if not config.batch.static:
        dynamic = ({0: torch.export.Dim("batch", min=config.batch.min, max=config.batch.max)},)
    with torch.no_grad():
        return torch.export.export(prepared, (example,), dynamic_shapes=dynamic)
