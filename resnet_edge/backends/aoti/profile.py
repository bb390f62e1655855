"""Per-block time of a fused ``aoti`` package for ``bench --profile``.

Inside a package, Inductor's own kernels carry no profiler records, but a fused package calls each
block as one ``resnet_edge::`` op through the dispatcher, which torch.profiler records. So each run's
wall time is cut at the ends of those calls: block *i* is the time from the end of block *i - 1*
(the start of the first block for the first) to its own end, the stem (``conv1`` row) everything
before the first block and the head (``fc`` row) everything after the last. An unfused package has
no such marks (its blocks are fused into Inductor kernels), and is not profiled.
"""

from __future__ import annotations

import torch

from ..base import Predictor

STEM = "conv1"
HEAD = "fc"
WARMUP = 3
_RUN = "resnet_edge::profile_run"
_BLOCK_OPS = ("resnet_edge::fused_basic_block", "resnet_edge::fused_bottleneck")


def run_rows(run: tuple[float, float], ops: list[tuple[float, float]], blocks: list[str]) -> dict[str, float] | None:
    """One run's ``(start, end)`` and its block ops' ``(start, end)`` in order -> ``{row: duration}``."""
    if len(ops) != len(blocks):
        return None
    rows = {STEM: ops[0][0] - run[0]}
    previous = ops[0][0]
    for block, (_, end) in zip(blocks, ops):
        rows[block] = end - previous
        previous = end
    rows[HEAD] = run[1] - previous
    return rows


def fused_package_profile(predictor: Predictor, blocks: list[str], batch: torch.Tensor, iters: int) -> dict[str, float] | None:
    """Mean milliseconds per run of each row over ``iters`` runs of ``batch`` (None if the ops are not seen)."""
    for _ in range(WARMUP):
        predictor(batch)
    activities = [torch.profiler.ProfilerActivity.CPU]
    with torch.profiler.profile(activities=activities) as profiler:
        for _ in range(iters):
            with torch.profiler.record_function(_RUN):
                predictor(batch)
    events = profiler.events()
    runs = sorted((e.time_range.start, e.time_range.end) for e in events if e.name == _RUN)
    ops = sorted((e.time_range.start, e.time_range.end) for e in events if e.name in _BLOCK_OPS)
    totals: dict[str, float] = {}
    for run in runs:
        inside = [op for op in ops if run[0] <= op[0] and op[1] <= run[1]]
        rows = run_rows(run, inside, blocks)
        if rows is None:
            return None
        for row, us in rows.items():
            totals[row] = totals.get(row, 0.0) + us
    return {row: us * 1e-3 / max(len(runs), 1) for row, us in totals.items()} if runs else None
