"""Per-block time of a deployed artifact, from each runtime's own profiler, for ``bench --profile``.

Rows are named as ``diagnose`` and ``sensitivity`` name layers: a residual block by its module name
(``layer2.1``), anything else by its top-level module (``conv1``, ``relu``, ``avgpool``, ``fc``).

How a runtime's profiled kernel is charged to a block:

* ONNX (ONNX Runtime, OpenVINO IRs converted from ONNX): the exporter's ``pkg.torch.onnx.name_scopes``
  metadata (read by ``probes``) gives each node's module path. A fused or re-laid-out kernel is named
  after one of its original nodes or tensors plus a suffix (``node_Conv_78_token_1``,
  ``relu_1_nchwc``): trailing ``_xxx`` parts are stripped until a known name is found.
* OpenVINO without an ONNX file beside the IR: the weight constants keep the PyTorch parameter
  names (``layer1.0.conv1.weight``), so an op is charged to the module of the weights it reads.
* TorchScript: the frozen graph has no module scopes left, so its ops are cut at the block outputs
  (``probes``' rule: each fused block op, or each ReLU fed by an add); ops before the first block
  are the stem (``conv1``), ops after the last the head (``fc``).
* A kernel that maps to nothing (a layout reorder, an input quantizer) is charged to the block of the
  kernel run before it (the first mapped block when none ran before).

Each function returns ``{row: mean milliseconds per run}`` in execution order, over ``iters`` runs
after ``warmup`` untimed ones.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Callable, Iterable, Sequence

import torch

from .probes import _is_block_output, _scopes

log = logging.getLogger(__name__)

HEAD = "fc"
STEM = "conv1"
WARMUP = 3


def scope_block(modules: Sequence[str], blocks: Sequence[str]) -> str | None:
    """The row of an op inside ``modules`` (outermost first): the deepest residual block, else the top-level module."""
    for module in reversed(modules):
        if module in blocks:
            return module
    return modules[0] if modules else None


def module_of_parameter(name: str, blocks: Sequence[str]) -> str | None:
    """The row of a parameter named like ``layer1.0.conv1.weight`` (None for other names)."""
    parts = name.split(".")
    if len(parts) < 2:
        return None
    return scope_block([".".join(parts[:i]) for i in range(1, len(parts))], blocks)


def onnx_name_table(model, blocks: Sequence[str]) -> dict[str, str]:
    """Node names and output tensor names of an ONNX model -> row, from the exporter's scope metadata."""
    table: dict[str, str] = {}
    for node in model.graph.node:
        scopes = _scopes(node)
        block = scope_block(scopes[1:-1], blocks)  # drop the root '' and the op's own name
        if block is None:
            continue
        for name in (node.name, *node.output):
            table.setdefault(name, block)
    return table


def lookup(name: str, table: dict[str, str]) -> str | None:
    """``table``'s row for a runtime kernel name, stripping ``_suffix`` parts until one is known."""
    candidate = name
    while candidate:
        if candidate in table:
            return table[candidate]
        if "_" not in candidate:
            return None
        candidate = candidate.rsplit("_", 1)[0]
    return None


def charge(events: Iterable[tuple[str | None, float]]) -> dict[str, float]:
    """Sum ``(row or None, duration)`` events per row; a None row goes to the previous row (the next one at the start)."""
    totals: dict[str, float] = {}
    pending = 0.0
    current: str | None = None
    for row, duration in events:
        if row is None:
            if current is None:
                pending += duration
            else:
                totals[current] += duration
            continue
        current = row
        totals[current] = totals.get(current, 0.0) + duration + pending
        pending = 0.0
    return totals


def mean_ms(totals: dict[str, float], runs: int, unit_ms: float) -> dict[str, float]:
    """Totals in ``unit_ms`` milliseconds over ``runs`` runs -> milliseconds per run."""
    return {row: total * unit_ms / max(runs, 1) for row, total in totals.items()}


# ------------------------------------------------------------------------------------ ONNX Runtime


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
    import onnx  # optional, with onnxruntime

    table = onnx_name_table(onnx.load(str(model_path)), blocks)
    array = batch.detach().to("cpu", torch.float32).contiguous().numpy()
    with tempfile.TemporaryDirectory(prefix="resnet-edge-profile-") as work:
        session = make_session(model_path, os.path.join(work, "ort"))
        for _ in range(WARMUP + iters):
            session.run(None, {input_name: array})
        trace = json.loads(Path(session.end_profiling()).read_text())
    totals, runs = ort_trace_times(trace, table, WARMUP)
    return mean_ms(totals, runs, 1e-3)


# ---------------------------------------------------------------------------------------- OpenVINO


def openvino_name_table(model, blocks: Sequence[str], onnx_model=None) -> dict[str, str]:
    """OpenVINO op friendly names -> row: the ONNX scopes when the IR's ONNX source is at hand, else the
    PyTorch names of the weight constants each op reads (through Convert/DQ-style ops, 4 steps up)."""
    table = onnx_name_table(onnx_model, blocks) if onnx_model is not None else {}

    def weights_row(node, depth: int = 0) -> str | None:
        if node.get_type_name() == "Constant":
            return module_of_parameter(node.get_friendly_name(), blocks)
        if depth >= 4:
            return None
        for value in node.inputs():
            parent = value.get_source_output().get_node()
            if parent.get_type_name() == "Parameter":
                continue
            row = weights_row(parent, depth + 1) if parent.get_type_name() != "Constant" or depth < 4 else None
            if row is not None:
                return row
        return None

    for op in model.get_ordered_ops():
        name = op.get_friendly_name()
        if name in table or op.get_type_name() in ("Constant", "Parameter", "Result"):
            continue
        if op.get_type_name() in ("Convolution", "MatMul", "GroupConvolution"):
            row = weights_row(op)
            if row is not None:
                table[name] = row
    return table


def _runtime_rows(compiled, table: dict[str, str]) -> dict[str, str]:
    """Compiled (runtime) layer names -> row, through their ``originalLayersNames`` (the fused originals)."""
    rows: dict[str, str] = {}
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        originals = str(info["originalLayersNames"]) if "originalLayersNames" in info else ""
        for original in filter(None, (part.strip() for part in originals.split(","))):
            row = lookup(original, table)
            if row is not None:
                rows[op.get_friendly_name()] = row
                break
    return rows


def openvino_profile(compiled, model, blocks: Sequence[str], batch: torch.Tensor, iters: int, onnx_model=None) -> dict[str, float]:
    """OpenVINO's performance counters (``compiled`` with ``PERF_COUNT`` on); ``model`` is the read IR."""
    table = openvino_name_table(model, blocks, onnx_model)
    runtime = _runtime_rows(compiled, table)
    request = compiled.create_infer_request()
    array = batch.detach().to("cpu", torch.float32).contiguous().numpy()
    for _ in range(WARMUP):
        request.infer({0: array})
    totals: dict[str, float] = {}
    for _ in range(iters):
        request.infer({0: array})
        events = [(runtime.get(info.node_name) or lookup(info.node_name, table), info.real_time.total_seconds() * 1e3)
                  for info in request.get_profiling_info() if info.status.name == "EXECUTED"]
        for row, ms in charge(events).items():
            totals[row] = totals.get(row, 0.0) + ms
    return mean_ms(totals, iters, 1.0)


# ------------------------------------------------------------------------------------- TorchScript


def torchscript_node_rows(graph, blocks: Sequence[str]) -> list[tuple[str, str]]:
    """(op kind, row) of the frozen graph's compute nodes in order, cut at the block outputs."""
    nodes = [node for node in graph.nodes() if not node.kind().startswith("prim::")]
    ends = [i for i, node in enumerate(nodes) if _is_block_output(node)]
    if len(ends) != len(blocks):
        return []
    first = ends[0]
    # The stem ends at its last ReLU / pool before the first block's ops.
    stem_end = max((i for i in range(first) if nodes[i].kind().split("::")[1].rstrip("_") in ("relu", "max_pool2d")), default=-1)
    rows, start = [], 0
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


# ---------------------------------------------------------------------------------------- TensorRT

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
