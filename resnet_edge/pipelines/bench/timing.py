"""The timed loop: warm-up, then rounds that alternate the variants, host batch to host logits.

On CUDA every iteration starts after ``torch.cuda.synchronize()`` and is timed with
``time.perf_counter`` (host-to-result) and CUDA events (device time); the result's copy to the host
synchronises. Rounds alternate the variants so slow drifts of a shared machine hit all of them alike.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import torch

from ...core.errors import CheckFailed
from .cudagraphs import is_graph_variant
from .variants import Variant

log = logging.getLogger(__name__)

Samples = dict[str, list[float]]  # variant name -> milliseconds, one per iteration


def split(total: int, parts: int) -> list[int]:
    """``total`` iterations in at most ``parts`` near-equal rounds (never an empty one)."""
    parts = max(1, min(parts, total))
    return [total // parts + (1 if index < total % parts else 0) for index in range(parts)]


def stats(values: list[float]) -> dict:
    """p50/p90/p99, mean and min of ``values``."""
    array = np.asarray(values, dtype=np.float64)
    p50, p90, p99 = np.percentile(array, [50, 90, 99])
    return {"p50": float(p50), "p90": float(p90), "p99": float(p99), "mean": float(array.mean()), "min": float(array.min())}


def warm_up(variants: list[Variant], batch: torch.Tensor, warmup: int, failed: dict[str, str]) -> list[Variant]:
    """Run each variant ``warmup`` times; return those that ran.

    A CUDA graph that cannot be captured is recorded in ``failed`` and left out; the bundle or the
    baseline failing is a ``CheckFailed``.
    """
    active = []
    for variant in variants:
        if variant.name in failed:
            continue
        try:
            for _ in range(max(warmup, 1 if is_graph_variant(variant) else 0)):  # a graph is captured on its first call
                variant.run(batch)
            active.append(variant)
        except Exception as error:
            text = str(error).strip()
            reason = f"{type(error).__name__}: {text.splitlines()[0][:200] if text else ''}"
            if not is_graph_variant(variant):
                raise CheckFailed(f"{variant.name} failed to run a batch of {batch.shape[0]}: {reason}") from None
            failed[variant.name] = reason
            log.warning("%s failed at batch %d and is left out: %s", variant.name, batch.shape[0], reason)
    return active


def time_rounds(active: list[Variant], batch: torch.Tensor, iters: int, rounds: int, cuda: bool) -> tuple[Samples, Samples]:
    """(host-to-result ms, CUDA-event ms) per variant; ``iters`` each, split into alternating rounds."""
    wall: Samples = {v.name: [] for v in active}
    gpu: Samples = {v.name: [] for v in active}
    for index, chunk in enumerate(split(iters, rounds)):
        order = active[index % len(active) :] + active[: index % len(active)] if active else []
        for variant in order:
            times, device_times = _time(variant, batch, chunk, cuda and variant.device == "cuda")
            wall[variant.name] += times
            gpu[variant.name] += device_times
    return wall, gpu


def _time(variant: Variant, batch: torch.Tensor, iters: int, cuda: bool) -> tuple[list[float], list[float]]:
    wall, device_ms = [], []
    for _ in range(iters):
        if cuda:
            torch.cuda.synchronize()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
        began = time.perf_counter()
        variant.run(batch)
        if cuda:
            end.record()
            torch.cuda.synchronize()
        wall.append((time.perf_counter() - began) * 1e3)
        if cuda:
            device_ms.append(start.elapsed_time(end))
    return wall, device_ms
