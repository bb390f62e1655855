"""Run a bundle's raw TensorRT engine (``model.engine``) from Python without torch: TensorRT plus
cuda-python or pycuda (``cudamem``; cuda-python preferred, whichever is installed).

For camera loops and DeepStream-style apps that want the plain engine: the device buffers (sized for
the engine's largest batch), page-locked host buffers and a CUDA stream are allocated once; each
call copies the batch in, runs ``execute_async_v3`` on the stream, copies the logits out and waits::

    from resnet_edge.backends.tensorrt.runner import EngineRunner

    with EngineRunner("build/r50-int8/model.engine") as run:
        logits = run(batch)          # numpy float32 N x 3 x H x W  ->  numpy float32 N x classes

Needs the ``tensorrt`` Python bindings (the same TensorRT that built the engine). A DLA engine needs
``dla_core`` (the manifest's ``tensorrt.dla.core``): TensorRT's runtime must be told the core before
it deserialises the engine. ``io_names`` (the manifest's ``engine_io``) checks that the engine's
tensors are the ones the build recorded. ``extra_outputs`` names outputs besides the logits (``diagnose``'s
probe engine, whose block outputs are marked as engine outputs); ``outputs(batch)`` returns them all. The pure logic (tensor order, dtypes, buffer sizes) lives in
``bindings``.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Sequence

import numpy as np

from ...core.errors import CheckFailed, UsageError
from . import bindings
from .cudamem import open_binding


def _tensorrt():
    try:
        return importlib.import_module("tensorrt")
    except ImportError as error:
        raise UsageError(f"the raw-engine runner needs TensorRT's Python bindings ({error}); install the TensorRT that built the engine") from None


def deserialize(trt, data: bytes, dla_core: int | None = None):
    """``(logger, runtime, engine)``: a ``trt.Runtime`` (its ``DLA_core`` set before deserialising a DLA engine) and the engine."""
    logger = trt.Logger(trt.Logger.WARNING)
    runtime = trt.Runtime(logger)
    if dla_core is not None:
        if runtime.num_DLA_cores <= dla_core:
            raise CheckFailed(f"the engine runs on DLA core {dla_core} but TensorRT sees {runtime.num_DLA_cores} DLA core(s) here")
        runtime.DLA_core = dla_core
    engine = runtime.deserialize_cuda_engine(data)
    if engine is None:
        raise CheckFailed(
            f"TensorRT {trt.__version__} cannot deserialise this engine: it was built with another TensorRT version "
            f"or for another GPU model; rebuild it on this device (resnet-edge compile or resnet-edge retarget)"
        )
    return logger, runtime, engine


class EngineRunner:
    """A deserialised engine with its buffers, stream and execution context, reused call after call.

    ``engine``: path to a serialized TensorRT plan, or its bytes. ``device``: CUDA device index.
    ``dla_core``: the DLA core a DLA engine was built for. ``io_names``: the manifest's ``engine_io``.
    ``cuda``: ``"cuda-python"`` or ``"pycuda"`` to force one binding (default: cuda-python if present).
    The engine must have exactly one input (NCHW) and one output (logits), as resnet-edge builds them,
    plus the ``extra_outputs`` named (each with the batch as its first dimension).
    """

    def __init__(self, engine: str | Path | bytes, device: int = 0, dla_core: int | None = None,
                 io_names: dict | None = None, cuda: str | None = None, extra_outputs: Sequence[str] = ()) -> None:
        self._allocations: list[tuple[str, object]] = []
        self._stream = None
        trt = self._trt = _tensorrt()
        self._cuda = open_binding(device, cuda)
        data = engine if isinstance(engine, (bytes, bytearray)) else Path(engine).read_bytes()
        self._logger, self._runtime, self.engine = deserialize(trt, data, dla_core)
        tensors = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        order = [(name, self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT) for name in tensors]
        self.input_name, self.output_name = bindings.split_io(order, io_names, extra_outputs)
        self.extra_outputs = tuple(extra_outputs)
        self.context = self.engine.create_execution_context()
        self.plan = self._plan()
        self.context.set_input_shape(self.input_name, (self.plan.max_batch, *self.plan.image_shape))
        self._allocate()

    def _plan(self) -> bindings.BufferPlan:
        engine = self.engine
        shape = tuple(engine.get_tensor_shape(self.input_name))
        profile = engine.get_tensor_profile_shape(self.input_name, 0) if shape[0] == -1 else None
        low, high, image = bindings.batch_range(shape, profile)
        self.context.set_input_shape(self.input_name, (high, *image))
        return bindings.buffer_plan(
            shape, profile, tuple(self.context.get_tensor_shape(self.output_name)),
            bindings.numpy_dtype(engine.get_tensor_dtype(self.input_name)),
            bindings.numpy_dtype(engine.get_tensor_dtype(self.output_name)),
        )

    def _allocate(self) -> None:
        cuda, plan = self._cuda, self.plan
        self._d_input = cuda.malloc(plan.input_bytes)
        self._allocations.append(("device", self._d_input))
        self._d_output = cuda.malloc(plan.output_bytes)
        self._allocations.append(("device", self._d_output))
        self._h_input, handle = cuda.pinned((plan.max_batch, *plan.image_shape), plan.input_dtype)
        self._allocations.append(("host", handle))
        self._h_output, handle = cuda.pinned((plan.max_batch, plan.num_classes), plan.output_dtype)
        self._allocations.append(("host", handle))
        self._stream = cuda.stream()
        self.context.set_tensor_address(self.input_name, self._d_input)
        self.context.set_tensor_address(self.output_name, self._d_output)
        self._extra = {name: self._allocate_output(name) for name in self.extra_outputs}

    def _allocate_output(self, name: str) -> tuple[int, np.ndarray]:
        """Device and pinned host buffers of one extra output, at the largest batch (the input is set to it)."""
        shape = tuple(int(size) for size in self.context.get_tensor_shape(name))
        dtype = bindings.numpy_dtype(self.engine.get_tensor_dtype(name))
        device = self._cuda.malloc(int(np.prod(shape)) * dtype.itemsize)
        self._allocations.append(("device", device))
        host, handle = self._cuda.pinned(shape, dtype)
        self._allocations.append(("host", handle))
        self.context.set_tensor_address(name, device)
        return device, host

    # -- what the engine takes
    @property
    def binding(self) -> str:
        """The CUDA binding in use: ``"cuda-python"`` or ``"pycuda"``."""
        return self._cuda.name

    @property
    def min_batch(self) -> int:
        return self.plan.min_batch

    @property
    def max_batch(self) -> int:
        return self.plan.max_batch

    @property
    def image_shape(self) -> tuple[int, ...]:
        return self.plan.image_shape

    @property
    def num_classes(self) -> int:
        return self.plan.num_classes

    @property
    def input_dtype(self) -> np.dtype:
        return self.plan.input_dtype

    @property
    def output_dtype(self) -> np.dtype:
        return self.plan.output_dtype

    # -- running
    def __call__(self, batch) -> np.ndarray:
        """NCHW batch (numpy, or anything ``np.asarray`` takes; a torch CPU tensor works) -> float32 logits."""
        return self._run(batch, ())[self.output_name]

    def outputs(self, batch) -> dict[str, np.ndarray]:
        """Every output for ``batch``, as float32 arrays by tensor name: the logits and the ``extra_outputs``."""
        return self._run(batch, self.extra_outputs)

    def _run(self, batch, extra: Sequence[str]) -> dict[str, np.ndarray]:
        array = np.asarray(batch)
        if array.ndim == 3:
            array = array[None]
        problem = self.plan.check_batch(array.shape)
        if problem:
            raise UsageError(problem)
        count, cuda = array.shape[0], self._cuda
        host_in = self._h_input[:count]
        np.copyto(host_in, array, casting="same_kind")
        if not self.context.set_input_shape(self.input_name, (count, *self.image_shape)):
            raise CheckFailed(f"TensorRT refused input shape {(count, *self.image_shape)}")
        cuda.to_device(self._d_input, host_in, self._stream)
        if not self.context.execute_async_v3(cuda.stream_handle(self._stream)):
            raise CheckFailed("TensorRT execute_async_v3 failed (see TensorRT's log above)")
        copies = {self.output_name: (self._d_output, self._h_output)} | {name: self._extra[name] for name in extra}
        for device, host in copies.values():
            cuda.to_host(host[:count], device, self._stream)
        cuda.synchronize(self._stream)
        return {name: host[:count].astype(np.float32, copy=True) for name, (_, host) in copies.items()}

    def layer_information(self) -> str:
        """TensorRT's engine inspector output (JSON): the layers and, on Jetson, which run on the DLA."""
        inspector = self.engine.create_engine_inspector()
        return inspector.get_engine_information(self._trt.LayerInformationFormat.JSON)

    # -- cleanup
    def close(self) -> None:
        cuda = getattr(self, "_cuda", None)
        if cuda is None:
            return
        if self._stream is not None:
            cuda.destroy_stream(self._stream)
            self._stream = None
        while self._allocations:
            kind, handle = self._allocations.pop()
            (cuda.free if kind == "device" else cuda.free_pinned)(handle)
        self.context = None
        cuda.close()
        self._cuda = None

    def __enter__(self) -> "EngineRunner":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
