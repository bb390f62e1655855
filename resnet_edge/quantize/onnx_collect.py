"""Run an FP32 ONNX model over calibration batches and collect ``ranges.TensorStats`` for every float tensor.

Memory stays flat: each tensor is reduced to min/max and a fixed-size |x| histogram batch by batch.
``collect_stats`` returns the statistics (any number of range rules can then be evaluated on them,
see ``ranges.compute_amax``); ``collect_ranges`` applies one method.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable

import numpy as np
import torch

from ..core.errors import UsageError
from .ranges import TensorStats, compute_range, needs_histogram

log = logging.getLogger(__name__)


def onnx_module():
    """The ``onnx`` package (an optional dependency: the ONNX Runtime backend's)."""
    import onnx as module

    return module


def ort_module():
    """The ``onnxruntime`` package (an optional dependency: the ONNX Runtime backend's)."""
    import onnxruntime as module

    return module


def _float_tensors(model) -> list[str]:
    """Names of every float tensor a node produces, plus the graph inputs (not initializers)."""
    proto = onnx_module().TensorProto
    float_types = {proto.FLOAT, proto.FLOAT16}
    types = {}
    for info in [*model.graph.value_info, *model.graph.output, *model.graph.input]:
        if info.type.HasField("tensor_type"):
            types[info.name] = info.type.tensor_type.elem_type
    initializers = {init.name for init in model.graph.initializer}
    names = [info.name for info in model.graph.input if info.name not in initializers]
    for node in model.graph.node:
        for output in node.output:
            if output and output not in initializers and types.get(output, proto.FLOAT) in float_types:
                names.append(output)
    return list(dict.fromkeys(names))


float_tensors = _float_tensors  # the tensors calibration gives ranges to (``ort_calibrate`` checks stored ones)


def _chunk_size(shape) -> int:
    """Images per calibration run: every activation of a run is held at once, so ~64 for 32x32 inputs
    and 1 for 224x224 (a ResNet-50 image has ~20M activation values)."""
    area = int(shape[-1]) * int(shape[-2]) if len(shape) >= 2 else 1
    return max(1, min(64, (1 << 16) // max(area, 1)))


def _rechunk(batches: Iterable[torch.Tensor], static_batch: int | None) -> Iterable[tuple[np.ndarray, int]]:
    """(array, real images in it): small chunks for a dynamic-batch model; for a static-batch model,
    its batch size, the last chunk padded with repeats of its last image (padding is not counted)."""
    for batch in batches:
        array = batch.detach().float().cpu().numpy()
        size = static_batch or _chunk_size(array.shape)
        for start in range(0, len(array), size):
            chunk = array[start : start + size]
            real = len(chunk)
            if static_batch is not None and real < static_batch:
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], static_batch - real, axis=0)])
            yield chunk, real


def _augmented_session(model_path: Path, work_dir: Path):
    """An ORT session of the model with every float tensor as an output; (session, input name, static batch, names)."""
    module = onnx_module()
    runtime = ort_module()
    model = module.load(str(model_path))
    names = _float_tensors(model)
    existing = {output.name for output in model.graph.output}
    for name in names:
        if name not in existing:
            model.graph.output.append(module.helper.make_empty_tensor_value_info(name))
    augmented = Path(work_dir) / "calibration-augmented.onnx"
    module.save(model, str(augmented))
    input_info = model.graph.input[0]
    dim0 = input_info.type.tensor_type.shape.dim[0]
    static_batch = dim0.dim_value if dim0.HasField("dim_value") else None
    options = runtime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.graph_optimization_level = runtime.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep every tensor
    session = runtime.InferenceSession(str(augmented), options, providers=["CPUExecutionProvider"])
    return session, input_info.name, static_batch, names


def collect_stats(model_path: Path, batches: Iterable[torch.Tensor], histogram: bool, work_dir: Path) -> tuple[dict[str, TensorStats], int]:
    """Run the FP32 ONNX model over the batches: (tensor name -> statistics, images seen).

    ``histogram=False`` keeps only min/max (enough for the ``max`` rule). A ``UsageError`` when the
    batches hold no image.
    """
    session, input_name, static_batch, names = _augmented_session(model_path, work_dir)
    output_names = [output.name for output in session.get_outputs()]
    wanted = set(names)
    stats = {name: TensorStats(histogram=histogram) for name in names}
    seen = 0
    for array, real in _rechunk(batches, static_batch):
        outputs = session.run(output_names, {input_name: array})
        for name, value in zip(output_names, outputs):
            if name in wanted:
                stats[name].update(value[:real] if value.ndim and value.shape[0] == len(array) else value)
        seen += real
    if seen == 0:
        raise UsageError("the calibration data yielded no images")
    return stats, seen


def run_logits(model_path: Path, images: torch.Tensor, optimize: bool = True) -> torch.Tensor:
    """The model's first output for ``images`` (NCHW), run with ONNX Runtime on the CPU.

    ``optimize=False`` runs every node as written (no fusions): for a Q/DQ graph that is fake
    quantization with exactly its scales, the INT8 simulator of that graph.
    """
    runtime = ort_module()
    options = runtime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.log_severity_level = 3
    if not optimize:
        options.graph_optimization_level = runtime.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = runtime.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    input_info = session.get_inputs()[0]
    dim0 = input_info.shape[0]
    static_batch = dim0 if isinstance(dim0, int) and dim0 > 0 else None
    outputs = []
    for array, real in _rechunk([images], static_batch):
        (logits,) = session.run([session.get_outputs()[0].name], {input_info.name: array})
        outputs.append(torch.from_numpy(logits[:real]).float())
    return torch.cat(outputs)


def collect_ranges(
    model_path: Path, batches: Iterable[torch.Tensor], method: str, symmetric: bool, work_dir: Path
) -> dict[str, tuple[float, float]]:
    """Run the FP32 ONNX model over the calibration batches and return tensor name -> (lowest, highest)."""
    stats, seen = collect_stats(model_path, batches, needs_histogram(method), work_dir)
    log.info(f"calibration: {method} ranges for {len(stats)} tensors from {seen} images")
    return {name: compute_range(stat, method, symmetric) for name, stat in stats.items()}


__all__ = ["collect_ranges", "collect_stats", "onnx_module", "ort_module", "run_logits"]
