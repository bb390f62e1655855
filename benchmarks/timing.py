"""The interleaved timing loop the benchmark scripts share."""

from __future__ import annotations

import time
from typing import Callable

import torch


def time_interleaved(runners: dict[str, Callable], batch: torch.Tensor, rounds: int, iters: int, warmup: int) -> dict[str, list[float]]:
    """Milliseconds per call of each runner, ``rounds`` x ``iters`` samples.

    The runners take turns round by round, so background load on a shared machine hits all of them alike.
    """
    for run in runners.values():
        for _ in range(warmup):
            run(batch)
    samples: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            for _ in range(iters):
                start = time.perf_counter()
                run(batch)
                samples[name].append((time.perf_counter() - start) * 1000)
    return samples
