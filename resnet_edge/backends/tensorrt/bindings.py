"""The raw-engine runner's pure logic, apart from any CUDA call: which tensor is the input and which the
output, their numpy dtypes, the batch range, and the buffer sizes. ``runner.EngineRunner`` feeds it what
TensorRT reports; the tests feed it plain values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ...core.errors import CheckFailed

# TensorRT ``DataType`` member names -> numpy (``trt.nptype`` does the same where TensorRT is installed;
# BF16/FP8/INT4 have no numpy type and are never an I/O type of the engines resnet-edge builds).
TRT_TO_NUMPY = {
    "FLOAT": np.float32,
    "HALF": np.float16,
    "INT8": np.int8,
    "INT32": np.int32,
    "INT64": np.int64,
    "BOOL": np.bool_,
    "UINT8": np.uint8,
}


def numpy_dtype(trt_dtype) -> np.dtype:
    """The numpy dtype of a TensorRT ``DataType`` (the enum member or its name, e.g. ``"FLOAT"``)."""
    name = getattr(trt_dtype, "name", None) or str(trt_dtype).rsplit(".", 1)[-1]
    try:
        return np.dtype(TRT_TO_NUMPY[name.upper()])
    except KeyError:
        raise CheckFailed(f"the engine has an I/O tensor of type {name}, which has no numpy equivalent") from None


def split_io(tensors: list[tuple[str, bool]], expected: dict | None = None, extra_outputs: Sequence[str] = ()) -> tuple[str, str]:
    """(input name, output name) from ``[(name, is_input), ...]`` in the engine's own order.

    ``expected``: the manifest's ``engine_io`` (``{"input": ..., "output": ...}``): the names the build
    recorded, which on torch-tensorrt 2.8-2.13 are TensorRT's defaults rather than ``input``/``logits``.
    ``extra_outputs``: outputs besides the logits that the engine must have (``diagnose``'s probe engine
    marks the block outputs); the output name returned is the one output left.
    """
    inputs = [name for name, is_input in tensors if is_input]
    outputs = [name for name, is_input in tensors if not is_input and name not in extra_outputs]
    missing = sorted(set(extra_outputs) - {name for name, is_input in tensors if not is_input})
    if missing:
        raise CheckFailed(f"the engine lacks the marked output(s) {missing}")
    if len(inputs) != 1 or len(outputs) != 1:
        raise CheckFailed(f"expected an engine with one input and one output, found inputs {inputs} and outputs {outputs}")
    if expected:
        recorded = (expected.get("input"), expected.get("output"))
        if recorded != (inputs[0], outputs[0]):
            raise CheckFailed(
                f"the engine's tensors are {inputs[0]!r} -> {outputs[0]!r} but the manifest's engine_io records "
                f"{recorded[0]!r} -> {recorded[1]!r}: the engine file is not the one this bundle was built with"
            )
    return inputs[0], outputs[0]


@dataclass(frozen=True)
class BufferPlan:
    """Batch range and buffer sizes, for the largest batch the engine takes."""

    min_batch: int
    max_batch: int
    image_shape: tuple[int, ...]
    num_classes: int
    input_dtype: np.dtype
    output_dtype: np.dtype

    @property
    def input_bytes(self) -> int:
        return self.max_batch * int(np.prod(self.image_shape)) * self.input_dtype.itemsize

    @property
    def output_bytes(self) -> int:
        return self.max_batch * self.num_classes * self.output_dtype.itemsize

    def check_batch(self, shape: tuple[int, ...]) -> str | None:
        """Why the engine cannot take an array of ``shape``, or ``None`` when it can."""
        if tuple(shape[1:]) != self.image_shape or not self.min_batch <= shape[0] <= self.max_batch:
            return f"this engine takes {self.min_batch}..{self.max_batch} x {' x '.join(map(str, self.image_shape))} batches, got {tuple(shape)}"
        return None


def batch_range(input_shape: tuple[int, ...], profile: tuple[tuple[int, ...], ...] | None) -> tuple[int, int, tuple[int, ...]]:
    """(min batch, max batch, image shape) from the input's shape (``-1`` batch: dynamic) and, for a
    dynamic batch, the optimisation profile's (min, opt, max) shapes."""
    if input_shape[0] != -1:
        return int(input_shape[0]), int(input_shape[0]), tuple(int(s) for s in input_shape[1:])
    if profile is None:
        raise CheckFailed("the engine's batch is dynamic but it has no optimisation profile")
    low, _, high = (tuple(int(s) for s in shape) for shape in profile)
    return low[0], high[0], high[1:]


def buffer_plan(input_shape, profile, output_shape_at_max, input_dtype, output_dtype) -> BufferPlan:
    """The ``BufferPlan`` from what TensorRT reports (``output_shape_at_max``: the output's shape with
    the input set to the largest batch)."""
    low, high, image = batch_range(tuple(input_shape), profile)
    classes = int(np.prod(tuple(output_shape_at_max)[1:]))
    return BufferPlan(low, high, image, classes, np.dtype(input_dtype), np.dtype(output_dtype))
