"""Export a ModelOpt-calibrated model with explicit Q/DQ, the form TensorRT builds INT8 engines from.

``torch.export.export(strict=False)`` under ModelOpt's ``export_torch_mode()``: every quantizer then
appears in the graph as one ``torch.ops.tensorrt.quantize_op`` node, which Torch-TensorRT converts
to an ``IQuantizeLayer``/``IDequantizeLayer`` pair (``examples/dynamo/vgg16_ptq.py`` in
Torch-TensorRT is the reference). This needs the model and example on a CUDA device: ModelOpt's
``FakeTensorQuantFunction`` sends only CUDA tensors through the exportable ``tensorrt::quantize_op``;
CPU tensors take its eager fallback, whose ``if min_amax < 0`` check is a data-dependent branch
``torch.export`` cannot trace. ``torch_tensorrt.dynamo.trace`` does the same (``export_torch_mode``
+ ``strict=False``). TensorRT compiles on that GPU anyway.
"""

from __future__ import annotations

import torch
from torch import nn

from ..core.errors import UsageError
from .modelopt_import import require_modelopt


def export_for_tensorrt(
    model: nn.Module, example: torch.Tensor, batch: tuple[int, int, int] | None = None
) -> torch.export.ExportedProgram:
    """``torch.export`` a calibrated model so each quantizer becomes a ``tensorrt::quantize_op`` node.

    ``example`` is an NCHW batch on the CUDA device the model is on. ``batch`` = (min, opt, max)
    makes dim 0 dynamic (``torch.export.Dim``), as ``torch_tensorrt.Input(min_shape=...)`` would.
    A ``UsageError`` when model or example are not on a GPU (see the module docstring for why).
    """
    mtq = require_modelopt()
    parameter = next(model.parameters(), None)
    if example.device.type != "cuda" or (parameter is not None and parameter.device.type != "cuda"):
        raise UsageError(
            "exporting an INT8 model with Q/DQ needs it on a CUDA GPU: ModelOpt only routes CUDA tensors through "
            "the exportable tensorrt::quantize_op (CPU tensors take an eager path torch.export cannot trace); "
            "move the model and example to 'cuda' (the TensorRT build needs that GPU anyway)"
        )
    dynamic_shapes = None
    if batch is not None and batch[0] != batch[2]:
        low, _, high = batch
        if example.shape[0] == 1:
            raise UsageError("a dynamic batch needs an example batch of 2 or more (torch.export specialises on size 1)")
        dynamic_shapes = ({0: torch.export.Dim("batch", min=low, max=high)},)
    with torch.no_grad(), mtq.utils.export_torch_mode():
        return torch.export.export(model.eval(), (example,), dynamic_shapes=dynamic_shapes, strict=False)


def count_qdq_nodes(program: torch.export.ExportedProgram | torch.fx.GraphModule) -> int:
    """Number of ``tensorrt::quantize_op`` (Q/DQ pair) nodes in an exported graph."""
    graph = program.graph_module.graph if hasattr(program, "graph_module") else program.graph
    return sum(1 for node in graph.nodes if node.op == "call_function" and "quantize_op" in str(node.target))


__all__ = ["count_qdq_nodes", "export_for_tensorrt"]
