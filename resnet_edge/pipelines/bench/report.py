"""The bench report as data: one entry per variant and batch size, ratios to the baseline, and the
settings, machine and versions it was measured with. Schema: ``docs/validate-report.md`` ("bench report")."""

from __future__ import annotations

import math
import os
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from ...core import hostinfo
from ...core.timing import split, stats
from .cudagraphs import base_name
from .memory import CUDA_MEMORY_KIND, MemoryFigures
from .options import BASELINE_VARIANT, REPORT_SCHEMA, REPORT_VERSION, BenchOptions
from .variants import Variant


def _rounded_stats(values: list[float] | None) -> dict | None:
    """p50/p90/p99/mean/min of ``values`` to 4 decimals (None for no values)."""
    return {key: round(value, 4) for key, value in stats(values).items()} if values else None


def result_entry(variant: Variant, size: int, wall: list[float], gpu: list[float], memory: MemoryFigures, memory_kind: str,
                 resident: list[float] | None = None) -> dict:
    """The report's entry for ``variant`` at batch ``size`` (ratios are added by ``add_ratios``);
    ``resident``: its device-resident CUDA-event milliseconds (``resident.time_resident``), if measured."""
    figures = stats(wall)
    entry = {
        "variant": variant.name,
        "description": variant.description,
        "device": variant.device,
        "batch": size,
        "iters": len(wall),
        "p50_ms": round(figures["p50"], 4),
        "p90_ms": round(figures["p90"], 4),
        "p99_ms": round(figures["p99"], 4),
        "mean_ms": round(figures["mean"], 4),
        "min_ms": round(figures["min"], 4),
        "throughput": round(size * 1e3 / figures["p50"], 2) if figures["p50"] > 0 else None,
        "gpu_p50_ms": round(stats(gpu)["p50"], 4) if gpu else None,
        "device_ms": _rounded_stats(resident),
        "peak_mem_mb": None,
        "load_mem_mb": None,
        "mem_kind": None,
        "artifact_calls": None,
    }
    measured = memory.get((base_name(variant.name), size))  # a graph variant has its module's figures
    if measured is not None:
        on_cuda = variant.device == "cuda"
        entry["peak_mem_mb"] = measured.get("device_mb", measured["host_mb"]) if on_cuda else measured["host_mb"]
        entry["host_peak_mem_mb"] = measured["host_mb"]
        entry["load_mem_mb"] = measured["load_host_mb"]
        entry["mem_kind"] = CUDA_MEMORY_KIND if on_cuda else memory_kind
    if variant.batch_range is not None:
        low, high = variant.batch_range
        entry["artifact_calls"] = math.ceil(size / high)
        entry["padded_to"] = low if size < low else None
    return entry


def _sig(value: float, digits: int = 4) -> float:
    """``value`` to ``digits`` significant figures (ratios span orders of magnitude)."""
    return float(f"{value:.{digits}g}")


def add_ratios(results: list[dict]) -> None:
    """``speedup`` (baseline p50 / p50) and the ratio of every figure to the baseline's at that batch."""
    baseline = {entry["batch"]: entry for entry in results if entry["variant"] == BASELINE_VARIANT}
    for entry in results:
        base = baseline.get(entry["batch"])
        if base is None:
            entry["speedup"] = None
            entry["ratios"] = None
            continue
        entry["speedup"] = _sig(base["p50_ms"] / entry["p50_ms"]) if entry["p50_ms"] else None
        ratios = {}
        for key in ("p50_ms", "p90_ms", "p99_ms", "throughput", "peak_mem_mb"):
            ours, theirs = entry.get(key), base.get(key)
            ratios[key.removesuffix("_ms").removesuffix("_mb")] = _sig(ours / theirs) if ours is not None and theirs else None
        entry["ratios"] = ratios


def build_report(options: BenchOptions, manifest: dict, cuda: bool, results: list[dict], failed: dict[str, str], started: float) -> dict:
    """The whole report; ``started`` is the ``time.time()`` the run began."""
    report = {
        "schema": REPORT_SCHEMA,
        "schema_version": REPORT_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": options.command,
        "bundle": _bundle_section(options.bundle, manifest),
        "settings": _settings(options, cuda),
        "machine": _machine(),
        "versions": hostinfo.library_versions(),
        "failed_variants": failed,
        "results": results,
        "seconds": None,
    }
    report["seconds"] = round(time.time() - started, 2)
    return report


def _bundle_section(path: Path, manifest: dict) -> dict:
    return {
        "path": str(Path(path).expanduser().absolute()),
        "arch": manifest["arch"],
        "precision": manifest["precision"],
        "backend": manifest["backend"],
        "target": manifest["target"],
        "input_shape": list(manifest["input"]["shape"][1:]),
        "batch": manifest["input"]["batch"],
        "random_weights": bool(manifest["reference"].get("random_weights")),
    }


def _settings(options: BenchOptions, cuda: bool) -> dict:
    return {
        "batch_sizes": list(options.batch_sizes),
        "warmup": options.warmup,
        "iters": options.iters,
        "rounds": len(split(options.iters, options.rounds)),
        "threads": torch.get_num_threads(),
        "device": "cuda" if cuda else "cpu",
        "cuda_graphs": bool(options.cuda_graphs and cuda),
        "input": "random normal float32 NCHW batch on the host; timed from host batch to host logits"
                 + ("; device_ms: the same work with the input already on the GPU and the logits left there" if cuda else ""),
        "baseline": BASELINE_VARIANT if options.baseline else None,
    }


def _machine() -> dict:
    return {
        "cpu": hostinfo.cpu_model(),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "gpu": hostinfo.gpu_info(),
        "jetson": hostinfo.jetson_model(),
        "platform": hostinfo.host_facts()["platform"],
        "description": hostinfo.describe_host(),
    }
