"""torch.profiler over a frozen TorchScript module per block, for ``bench --profile``: the graph has no
module scopes left, so its ops are cut at the block outputs (``probe.is_block_output``); ops before the
first block are the stem (``conv1``), ops after the last the head (``fc``)."""

from __future__ import annotations

from typing import Sequence

import torch

from ..blocks import HEAD, STEM, WARMUP, charge, mean_ms
from .probe import is_block_output


def torchscript_node_rows(graph, blocks: Sequence[str]) -> list[tuple[str, str]]:
    """(op kind, row) of the frozen graph's compute nodes in order, cut at the block outputs."""
    nodes = [node for node in graph.nodes() if not node.kind().startswith("prim::")]
    ends = [i for i, node in enumerate(nodes) if is_block_output(node)]
    if len(ends) != len(blocks):
        return []
    first = ends[0]
    # The stem ends at its last ReLU / pool before the first block's ops.
    stem_end = max((i for i in range(first) if nodes[i].kind().split("::")[1].rstrip("_") in ("relu", "max_pool2d")), default=-1)
    rows = []
    for i, node in enumerate(nodes):
        if i <= stem_end:
            row = STEM
        elif i > ends[-1]:
            row = HEAD
        else:
            row = blocks[next(k for k, end in enumerate(ends) if i <= end)]
        rows.append((node.kind(), row))
    return rows


def _matched(event, kinds: set[str]) -> list:
    if event.name in kinds:
        return [event]
    return [found for child in event.cpu_children for found in _matched(child, kinds)]


def torchscript_profile(module: torch.nn.Module, device: torch.device, blocks: Sequence[str], batch: torch.Tensor,
                        iters: int) -> dict[str, float] | None:
    """torch.profiler over a frozen TorchScript module, its ops matched in order to the graph's (None if the graph cannot be cut)."""
    rows = torchscript_node_rows(module.forward.graph, blocks)
    if not rows:
        return None
    kinds = {kind for kind, _ in rows}
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    batch = batch.to(device, torch.float32)
    with torch.inference_mode():
        for _ in range(WARMUP + 2):  # the JIT's profiling executor optimises on the first runs
            module(batch)
        with torch.profiler.profile(activities=activities) as profiler:
            for _ in range(iters):
                with torch.profiler.record_function("resnet_edge::profile_run"):
                    module(batch)
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
    totals: dict[str, float] = {}
    for run in (e for e in profiler.events() if e.name == "resnet_edge::profile_run"):
        position, events = 0, []
        for event in _matched(run, kinds):
            index = next((i for i in range(position, len(rows)) if rows[i][0] == event.name), None)
            row = None if index is None else rows[index][1]
            position = position if index is None else index + 1
            device_us = getattr(event, "device_time_total", 0.0) if device.type == "cuda" else 0.0
            events.append((row, device_us or event.cpu_time_total))
        for row, us in charge(events).items():
            totals[row] = totals.get(row, 0.0) + us
    return mean_ms(totals, iters, 1e-3)
