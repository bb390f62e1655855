"""The graph a TensorRT build compiles: the folded (or fused) model on the GPU, exported with
``torch.export``, and what the compiled module says about itself afterwards."""

from __future__ import annotations

import logging

import torch
from torch import nn

from ...fuse import fuse_model
from ...fuse.fold import fold_batchnorm
from ..base import BatchSpec, BuildConfig
from ..common import FloatIO
from . import api

log = logging.getLogger(__name__)

CUDA = torch.device("cuda", 0)


def register_converters() -> None:
    """Register the fused ops' Torch-TensorRT converters (the module imports tensorrt and torch_tensorrt)."""
    import resnet_edge.ops.tensorrt_converters  # noqa: F401


def example_batch(batch: BatchSpec) -> int:
    """The batch size to export with: ``opt``, but at least 2 for a dynamic batch (export specialises on 1)."""
    if batch.static:
        return batch.opt
    return min(max(batch.opt, 2), batch.max)


def export_program(model: nn.Module, example: torch.Tensor, batch: BatchSpec) -> torch.export.ExportedProgram:
    """``torch.export`` (non-strict, as ``torch_tensorrt.dynamo.trace`` does) with a dynamic dim 0 if asked."""
    dynamic_shapes = None
    if not batch.static:
        dynamic_shapes = ({0: torch.export.Dim("batch", min=batch.min, max=batch.max)},)
    with torch.no_grad():
        return torch.export.export(model, (example,), dynamic_shapes=dynamic_shapes, strict=False)


def prepare_model(model: nn.Module, config: BuildConfig) -> nn.Module:
    """The model to export, on the GPU: BatchNorm folded, or with ``--fused`` the blocks swapped for
    the ``resnet_edge::`` ops. INT8 calibrates the folded model; its fused blocks come after calibration."""
    if config.fused:
        register_converters()
    if config.fused and config.precision != "int8":
        log.info("fusing blocks into resnet_edge ops")
        prepared = fuse_model(model.eval())  # a fused copy; model stays as it is
    else:
        prepared = fold_batchnorm(model)
    return prepared.to(CUDA).eval()


def float_program(prepared: nn.Module, plan: api.PrecisionPlan, example: torch.Tensor, batch: BatchSpec) -> torch.export.ExportedProgram:
    """FP32/FP16: the exported graph, cast to half between float32 I/O where the plan computes in half."""
    graph = FloatIO(prepared.half(), torch.float16) if plan.graph_dtype == torch.float16 else prepared
    return export_program(graph, example, batch)


def input_specs(torch_tensorrt, config: BuildConfig) -> list:
    """``torch_tensorrt.Input`` of the engine: the static batch, or the ``--dynamic-batch`` profile."""
    shape, batch = tuple(config.input_shape), config.batch
    if batch.static:
        return [torch_tensorrt.Input(shape=(batch.opt, *shape), dtype=torch.float32, name=config.input_name)]
    return [
        torch_tensorrt.Input(
            min_shape=(batch.min, *shape), opt_shape=(batch.opt, *shape), max_shape=(batch.max, *shape),
            dtype=torch.float32, name=config.input_name,
        )
    ]


def trt_submodules(module: nn.Module) -> list[tuple[str, nn.Module]]:
    """The TensorRT engine modules of a compiled graph (``TorchTensorRTModule`` and its Python twin)."""
    return [(name, sub) for name, sub in module.named_modules() if type(sub).__name__ in ("TorchTensorRTModule", "PythonTorchTensorRTModule")]


def torch_fallback_ops(module: nn.Module) -> list[str]:
    """Graph operators that run in PyTorch, outside any TensorRT engine (empty when fully converted)."""
    graph = getattr(module, "graph", None)
    if graph is None:
        return []
    engines = {name for name, _ in trt_submodules(module)}
    fallback = []
    for node in graph.nodes:
        if node.op == "call_function" and "getitem" not in str(node.target):
            fallback.append(str(node.target))
        elif node.op == "call_module" and node.target not in engines:
            fallback.append(str(node.target))
    return sorted(set(fallback))
