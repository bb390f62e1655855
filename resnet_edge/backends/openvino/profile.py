"""OpenVINO's performance counters per block, for ``bench --profile``: ops charged to rows through the
Q/DQ ONNX's scopes when the bundle keeps it, else through the PyTorch names of the weights they read."""

from __future__ import annotations

from typing import Sequence

import torch

from ..blocks import WARMUP, charge, lookup, mean_ms, module_of_parameter
from ..onnx_graph import onnx_name_table


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
