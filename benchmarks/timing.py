"""The interleaved timing loop the benchmark scripts share (the package's own, ``resnet_edge.core.timing``),
and ``ProcessRunners``: one process per runner (``resnet_edge.core.process_timing``, which ``bench`` uses too)."""

from __future__ import annotations

from typing import Callable

import torch

from resnet_edge.core.process_timing import ProcessRunners
from resnet_edge.core.timing import time_interleaved as interleaved
from resnet_edge.core.timing import timed_calls as core_timed_calls
from resnet_edge.core.timing import warm_up

__all__ = ["ProcessRunners", "time_interleaved", "timed_calls"]


def time_interleaved(runners: dict[str, Callable], batch: torch.Tensor, rounds: int, iters: int, warmup: int) -> dict[str, list[float]]:
    """Milliseconds per call of each runner, ``rounds`` x ``iters`` samples (``resnet_edge.core.timing``'s
    loop: the runners take turns round by round, so background load on a shared machine hits all alike)."""
    warm_up(runners, batch, lambda _name: warmup)
    wall, _ = interleaved(runners, batch, [iters] * rounds)
    return wall


def timed_calls(run: Callable, batch: torch.Tensor, iters: int) -> list[float]:
    """Milliseconds of each of ``iters`` calls ``run(batch)``."""
    return core_timed_calls(run, batch, iters)[0]
