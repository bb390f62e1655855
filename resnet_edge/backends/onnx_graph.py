"""The ONNX graph helpers several runtimes share: the project's ONNX export (ONNX Runtime, OpenVINO),
finding each residual block's output tensor by the exporter's scope metadata (block probes of ONNX
Runtime and TensorRT), and the node -> row table profilers charge kernels with.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from ..core.errors import CheckFailed
from ..fuse.fold import fold_batchnorm
from .base import BuildConfig
from .blocks import scope_block

# The lowest opset torch.export's ONNX exporter emits natively: ONNX Runtime >= 1.14, TensorRT >= 10.0.
OPSET = 18
SCOPES_KEY = "pkg.torch.onnx.name_scopes"
_QDQ = ("QuantizeLinear", "DequantizeLinear")


def import_onnx():
    """``onnx`` (optional, installed with the ONNX backends' requirements)."""
    import onnx

    return onnx


def export_onnx(model: nn.Module, config: BuildConfig, path: Path) -> None:
    """Export ``model`` (BatchNorm folded) to a single-file ONNX model with a static or dynamic batch."""
    folded = fold_batchnorm(model).float().cpu().eval()
    example = config.example_input(batch=max(config.batch.opt, 2) if not config.batch.static else config.batch.opt)
    dynamic_shapes = None
    if not config.batch.static:
        dynamic_shapes = {"x": {0: torch.export.Dim("batch", min=1, max=max(config.batch.max, 2))}}
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(
            folded,
            (example,),
            str(path),
            input_names=[config.input_name],
            output_names=[config.output_name],
            dynamic_shapes=dynamic_shapes,
            dynamo=True,
            opset_version=OPSET,
            external_data=False,
            verbose=False,
        )


def scopes(node) -> list[str]:
    """The module path the exporter recorded for ``node`` (``['', 'layer1', 'layer1.0', 'add_35']``), or []."""
    for prop in node.metadata_props:
        if prop.key == SCOPES_KEY:
            text = prop.value.strip("[]")
            return [part.strip().strip("'\"") for part in text.split(",")]
    return []


def _by_order(graph, blocks: Sequence[str]) -> dict[str, str]:
    producers = {out: node for node in graph.node for out in node.output}
    found = [node.output[0] for node in graph.node
             if node.op_type == "Relu" and node.input[0] in producers and producers[node.input[0]].op_type == "Add"]
    if len(found) != len(blocks):
        raise CheckFailed(f"found {len(found)} block outputs in the ONNX graph for {len(blocks)} blocks; cannot map them")
    return dict(zip(blocks, found))


def onnx_block_tensors(graph, blocks: Sequence[str]) -> dict[str, str]:
    """Block name -> the name of its output tensor in ``graph`` (float, before any QuantizeLinear)."""
    last: dict[str, str] = {}
    for node in graph.node:
        if node.op_type in _QDQ:
            continue
        node_scopes = scopes(node)
        for block in blocks:
            if block in node_scopes:
                last[block] = node.output[0]
    if len(last) == len(blocks):
        return {block: last[block] for block in blocks}
    return _by_order(graph, blocks)


def initializer(graph, name: str):
    """The value of initializer or ``Constant`` ``name`` in ``graph`` as an array, or None."""
    onnx = import_onnx()
    for init in graph.initializer:
        if init.name == name:
            return onnx.numpy_helper.to_array(init)
    for node in graph.node:  # a Constant node
        if node.op_type == "Constant" and node.output[0] == name:
            return onnx.numpy_helper.to_array(node.attribute[0].t)
    return None


def onnx_probe_model(model, blocks: Sequence[str]) -> tuple[object, dict[str, tuple[str, object, object]]]:
    """A copy of ``model`` that also outputs each block's output; block -> (output name, scale, zero point).

    Where the block output is quantized, its QuantizeLinear output (int8) is read: scale and zero point
    say how to dequantize it; (name, None, None) for a float output.
    """
    onnx = import_onnx()
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    graph = probe.graph
    tensors = onnx_block_tensors(graph, blocks)
    inferred = onnx.shape_inference.infer_shapes(probe).graph
    types = {info.name: info.type.tensor_type.elem_type for info in list(inferred.value_info) + list(inferred.output)}
    quantizers = {node.input[0]: node for node in graph.node if node.op_type == "QuantizeLinear"}
    existing = {out.name for out in graph.output}
    reads: dict[str, tuple[str, object, object]] = {}
    for block, tensor in tensors.items():
        q = quantizers.get(tensor)
        if q is not None:
            scale = initializer(graph, q.input[1])
            zero = initializer(graph, q.input[2]) if len(q.input) > 2 and q.input[2] else np.zeros((), np.int8)
            name, elem = q.output[0], onnx.helper.np_dtype_to_tensor_dtype(np.asarray(zero).dtype)
            reads[block] = (name, scale, zero)
        else:
            name, elem = tensor, types.get(tensor, onnx.TensorProto.FLOAT)
            reads[block] = (name, None, None)
        if name not in existing:
            graph.output.append(onnx.helper.make_tensor_value_info(name, elem, None))
            existing.add(name)
    return probe, reads


def dequantized(array: np.ndarray, scale, zero) -> torch.Tensor:
    """A probe's read of ``array``: as float32, dequantized with ``scale``/``zero`` when they are given."""
    if scale is None:
        return torch.from_numpy(np.asarray(array, dtype=np.float32))
    scale, zero = np.asarray(scale, np.float32), np.asarray(zero).astype(np.float32)
    if scale.ndim == 1:  # per-channel (axis 1 of NCHW)
        scale, zero = scale.reshape(1, -1, 1, 1), zero.reshape(1, -1, 1, 1)
    return torch.from_numpy((array.astype(np.float32) - zero) * scale)


def onnx_name_table(model, blocks: Sequence[str]) -> dict[str, str]:
    """Node names and output tensor names of an ONNX model -> row, from the exporter's scope metadata."""
    table: dict[str, str] = {}
    for node in model.graph.node:
        node_scopes = scopes(node)
        block = scope_block(node_scopes[1:-1], blocks)  # drop the root '' and the op's own name
        if block is None:
            continue
        for name in (node.name, *node.output):
            table.setdefault(name, block)
    return table
