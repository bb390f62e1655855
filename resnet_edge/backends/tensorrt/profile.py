"""TensorRT's ``IProfiler`` per block, for ``bench --profile``: each (fused) layer charged to the row its
name keeps of the source (``layer2.1.conv1``, ``/layer2/1/conv1/Conv``, ``layer2_1_conv1``)."""

from __future__ import annotations

import re
from typing import Sequence

from ..blocks import charge, mean_ms

_TRT_BLOCK = re.compile(r"layer(\d+)[./_](\d+)")
_TRT_MODULE = re.compile(r"(?<![A-Za-z0-9])(conv1|bn1|relu|maxpool|avgpool|fc)(?![A-Za-z0-9])")


def trt_layer_row(layer_name: str, blocks: Sequence[str]) -> str | None:
    """The row of a TensorRT layer: its residual block from the names TensorRT keeps of the source
    (``layer2.1.conv1``, ``/layer2/1/conv1/Conv`` or ``layer2_1_conv1``), else a top-level module, else None."""
    match = _TRT_BLOCK.search(layer_name)
    if match and f"layer{match[1]}.{match[2]}" in blocks:
        return f"layer{match[1]}.{match[2]}"
    module = _TRT_MODULE.search(layer_name)
    return module[1] if module else None


def trt_profile(runner, blocks: Sequence[str], batch, iters: int, warmup: int = 3) -> dict[str, float]:
    """Milliseconds per row per run from TensorRT's ``IProfiler`` on an ``EngineRunner``'s context.

    TensorRT reports each (fused) layer's time after every enqueue; layers it fused across a block
    boundary are charged by the first name in the fused layer, unmapped ones to the row before.
    """
    trt = runner._trt

    class _Profiler(trt.IProfiler):
        def __init__(self) -> None:
            trt.IProfiler.__init__(self)
            self.events: list[tuple[str | None, float]] = []

        def report_layer_time(self, layer_name: str, ms: float) -> None:
            self.events.append((trt_layer_row(layer_name, blocks), float(ms)))

    for _ in range(warmup):
        runner(batch)
    profiler = _Profiler()
    runner.context.profiler = profiler
    for _ in range(iters):
        runner(batch)
    return mean_ms(charge(profiler.events), iters, 1.0)
