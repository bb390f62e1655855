"""The interleaved timing loop that ``bench``, ``--backend auto`` and the benchmark scripts share.

Runners (name -> callable on one batch) take turns round by round, each round starting with the next
runner, so slow drifts of a shared machine hit all of them alike. On CUDA every call starts after
``torch.cuda.synchronize()`` and is timed with ``time.perf_counter`` (host-to-result) and CUDA events.
A runner with a ``timed(batch, iters, cuda)`` method times itself (one in its own process:
``process_timing.ProcessRunner``), so the figures never include the cost of reaching it.
"""

from __future__ import annotations

import logging
import time
from typing import Callable, Collection, Sequence

import numpy as np
import torch

from .errors import CheckFailed

log = logging.getLogger(__name__)

Samples = dict[str, list[float]]  # runner name -> milliseconds, one per call
Runner = Callable[[torch.Tensor], object]


def split(total: int, parts: int) -> list[int]:
    """``total`` iterations in at most ``parts`` near-equal rounds (never an empty one)."""
    parts = max(1, min(parts, total))
    return [total // parts + (1 if index < total % parts else 0) for index in range(parts)]


def stats(values: list[float]) -> dict:
    """p50/p90/p99, mean and min of ``values``."""
    array = np.asarray(values, dtype=np.float64)
    p50, p90, p99 = np.percentile(array, [50, 90, 99])
    return {"p50": float(p50), "p90": float(p90), "p99": float(p99), "mean": float(array.mean()), "min": float(array.min())}


def warm_up(runners: dict[str, Runner], batch: torch.Tensor, runs: Callable[[str], int],
            optional: Collection[str] = (), failed: dict[str, str] | None = None) -> list[str]:
    """Call each runner ``runs(name)`` times; the names of those that ran.

    A runner in ``optional`` that fails is recorded in ``failed`` (name -> reason) and left out; any
    other failing is a ``CheckFailed`` in one line.
    """
    failed = {} if failed is None else failed
    ran = []
    for name, run in runners.items():
        try:
            for _ in range(runs(name)):
                run(batch)
            ran.append(name)
        except Exception as error:
            text = str(error).strip()
            reason = f"{type(error).__name__}: {text.splitlines()[0][:200] if text else ''}"
            if name not in optional:
                raise CheckFailed(f"{name} failed to run a batch of {batch.shape[0]}: {reason}") from None
            failed[name] = reason
            log.warning("%s failed at batch %d and is left out: %s", name, batch.shape[0], reason)
    return ran


def timed_calls(run: Runner, batch: torch.Tensor, iters: int, cuda: bool = False) -> tuple[list[float], list[float]]:
    """(host-to-result ms, CUDA-event ms) of each of ``iters`` calls ``run(batch)``; the second is empty
    unless ``cuda``. A runner with a ``timed`` method is asked for the figures instead."""
    timed = getattr(run, "timed", None)
    if timed is not None:
        return timed(batch, iters, cuda)
    wall, device_ms = [], []
    for _ in range(iters):
        if cuda:
            torch.cuda.synchronize()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
        began = time.perf_counter()
        run(batch)
        if cuda:
            end.record()
            torch.cuda.synchronize()
        wall.append((time.perf_counter() - began) * 1e3)
        if cuda:
            device_ms.append(start.elapsed_time(end))
    return wall, device_ms


def time_interleaved(runners: dict[str, Runner], batch: torch.Tensor, rounds: Sequence[int],
                     on_cuda: Collection[str] = ()) -> tuple[Samples, Samples]:
    """(host-to-result ms, CUDA-event ms) per runner: ``rounds[i]`` calls each in round ``i``, the runners
    taking turns and each round starting one runner later. Runners in ``on_cuda`` are timed with CUDA events too."""
    names = list(runners)
    wall: Samples = {name: [] for name in names}
    gpu: Samples = {name: [] for name in names}
    for index, iters in enumerate(rounds):
        shift = index % len(names) if names else 0
        for name in names[shift:] + names[:shift]:
            times, device_times = timed_calls(runners[name], batch, iters, name in on_cuda)
            wall[name] += times
            gpu[name] += device_times
    return wall, gpu
