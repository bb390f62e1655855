"""``bench --profile``: where the time goes inside the artifact, per residual block.

Each backend reads its runtime's own profiler (``Backend.profile_blocks``: ONNX Runtime's profiler,
OpenVINO's performance counters, torch.profiler, TensorRT's IProfiler) and charges every kernel to
a row named as ``diagnose`` and ``sensitivity`` name layers (``layer2.1``; top-level modules such
as ``conv1`` and ``fc`` for the rest). Profilers add overhead and a fused kernel is charged whole to
one block, so the rows say where the time goes, not what a plain run costs: the sweep's latency stays
the figure of record.
"""

from __future__ import annotations

import logging

import torch

from ...backends import get_backend
from ...bundle import read_manifest
from ...models import block_names, create_model
from .options import BenchOptions
from .variants import example_batch

log = logging.getLogger(__name__)


def residual_blocks(manifest: dict) -> list[str]:
    """The residual block names of the bundle's arch (``layer1.0``...), as ``diagnose`` names them."""
    with torch.random.fork_rng(devices=[]):
        model = create_model(manifest["arch"], num_classes=manifest["num_classes"], shortcut=manifest.get("shortcut"))
    return block_names(model)


def profile_section(options: BenchOptions, manifest: dict | None = None) -> dict:
    """The report's ``profile`` section: per-row milliseconds at the first batch size, or why there are none.

    ``{"supported": bool, "backend", "batch", "iters", "blocks": [{"block", "ms", "percent"}], "total_ms", "reason"}``.
    """
    manifest = manifest or read_manifest(options.bundle)
    backend = get_backend(manifest["backend"])
    size = min(options.batch_sizes)
    batch = manifest["input"]["batch"]
    low, high = int(batch.get("min", 1)), int(batch.get("max", size))
    size = min(max(size, low), high)  # the artifact's own batch range: no padding under the profiler
    blocks = residual_blocks(manifest)
    section = {"supported": False, "backend": manifest["backend"], "batch": size, "iters": options.iters, "blocks": [], "total_ms": None}
    times = backend.profile_blocks(options.bundle, manifest, blocks, example_batch(size, tuple(manifest["input"]["shape"][1:])),
                                   options.iters, device=options.device)
    if times is None:
        section["reason"] = f"the {backend.name} backend has no per-block profiler"
        log.warning("--profile: %s", section["reason"])
        return section
    total = sum(times.values())
    missing = [block for block in blocks if block not in times]
    section.update(supported=True, total_ms=round(total, 4), missing=missing,
                   blocks=[{"block": row, "ms": round(ms, 4), "percent": round(100 * ms / total, 2) if total > 0 else None}
                           for row, ms in times.items()])
    if missing:
        log.warning("--profile: no time charged to %s (fused into a neighbour or not mapped)", ", ".join(missing))
    return section
