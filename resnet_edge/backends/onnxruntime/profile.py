"""ONNX Runtime's own profiler per block, for ``bench --profile``: kernels charged to rows through the
exporter's scopes (``onnx_graph.onnx_name_table``), a kernel's ``_suffix`` parts stripped until known."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Callable, Sequence

import torch

from ..blocks import WARMUP, charge, lookup, mean_ms
from ..onnx_graph import import_onnx, onnx_name_table


def _run_windows(trace: list[dict]) -> list[tuple[float, float]]:
    runs = sorted((e["ts"], e["ts"] + e["dur"]) for e in trace if e.get("cat") == "Session" and e.get("name") == "model_run")
    return runs


def ort_trace_times(trace: list[dict], table: dict[str, str], warmup: int) -> tuple[dict[str, float], int]:
    """Microseconds per row summed over the runs after ``warmup`` in an ONNX Runtime profile trace; and the run count."""
    windows = _run_windows(trace)[warmup:]
    if not windows:
        return {}, 0
    start = windows[0][0]
    kernels = sorted((e for e in trace if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time") and e["ts"] >= start),
                     key=lambda e: e["ts"])
    events = [(lookup(e["name"][: -len("_kernel_time")], table), float(e["dur"])) for e in kernels]
    return charge(events), len(windows)


def ort_profile(model_path: Path, blocks: Sequence[str], make_session: Callable[[Path, str], object],
                input_name: str, batch: torch.Tensor, iters: int) -> dict[str, float]:
    """ONNX Runtime's profiler on ``model_path``: ``make_session(path, profile_prefix)`` opens it as the
    backend does, with ``SessionOptions.enable_profiling`` on."""
    table = onnx_name_table(import_onnx().load(str(model_path)), blocks)
    array = batch.detach().to("cpu", torch.float32).contiguous().numpy()
    with tempfile.TemporaryDirectory(prefix="resnet-edge-profile-") as work:
        session = make_session(model_path, os.path.join(work, "ort"))
        for _ in range(WARMUP + iters):
            session.run(None, {input_name: array})
        trace = json.loads(Path(session.end_profiling()).read_text())
    totals, runs = ort_trace_times(trace, table, WARMUP)
    return mean_ms(totals, runs, 1e-3)
