"""Run a bundle's raw TensorRT engine (``model.engine``) from Python without torch: TensorRT + cuda-python.

For camera loops and DeepStream-style apps that want the plain engine: the device buffers (sized for
the engine's largest batch), page-locked host buffers and a CUDA stream are allocated once; each
call copies the batch in, runs ``execute_async_v3`` on the stream, copies the logits out and waits::

    from resnet_edge.backends.tensorrt.runner import EngineRunner

    with EngineRunner("build/r50-int8/model.engine") as run:
        logits = run(batch)          # numpy float32 N x 3 x H x W  ->  numpy float32 N x classes

Needs the ``tensorrt`` Python bindings (the same TensorRT that built the engine) and ``cuda-python``
(``cuda.bindings.runtime``; older releases call it ``cuda.cudart``). pycuda works the same way; it is
not used because it needs a C compiler to install and cuda-python ships wheels for x86 and Jetson.
"""

from __future__ import annotations

import ctypes
import importlib
from pathlib import Path

import numpy as np

from ...core.errors import CheckFailed, UsageError


def _cudart():
    for name in ("cuda.bindings.runtime", "cuda.cudart"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise UsageError("the raw-engine runner needs cuda-python: pip install cuda-python (on JetPack 6: cuda-python==12.6.*)")


def _tensorrt():
    try:
        return importlib.import_module("tensorrt")
    except ImportError as error:
        raise UsageError(f"the raw-engine runner needs TensorRT's Python bindings ({error}); install the TensorRT that built the engine") from None


class EngineRunner:
    """A deserialised engine with its buffers, stream and execution context, reused call after call.

    ``engine``: path to a serialized TensorRT plan, or its bytes. ``device``: CUDA device index.
    The engine must have exactly one input (NCHW) and one output (logits), as resnet-edge builds them.
    """

    def __init__(self, engine: str | Path | bytes, device: int = 0) -> None:
        self._cudart = cudart = _cudart()
        trt = self._trt = _tensorrt()
        self._allocations: list[tuple[str, int]] = []
        self._stream = None
        self._check(cudart.cudaSetDevice(device), "cudaSetDevice")
        data = engine if isinstance(engine, (bytes, bytearray)) else Path(engine).read_bytes()
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self.engine = self._runtime.deserialize_cuda_engine(data)
        if self.engine is None:
            raise CheckFailed(
                f"TensorRT {trt.__version__} cannot deserialise this engine: it was built with another TensorRT version "
                f"or for another GPU model; rebuild it on this device with resnet-edge compile"
            )
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if len(inputs) != 1 or len(outputs) != 1:
            raise CheckFailed(f"expected an engine with one input and one output, found inputs {inputs} and outputs {outputs}")
        self.input_name, self.output_name = inputs[0], outputs[0]
        self.input_dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(self.input_name)))
        self.output_dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(self.output_name)))
        shape = tuple(self.engine.get_tensor_shape(self.input_name))
        if shape[0] == -1:  # dynamic batch: the optimisation profile bounds it
            low, _, high = (tuple(s) for s in self.engine.get_tensor_profile_shape(self.input_name, 0))
            self.min_batch, self.max_batch, self.image_shape = low[0], high[0], tuple(high[1:])
        else:
            self.min_batch = self.max_batch = shape[0]
            self.image_shape = shape[1:]
        self.context = self.engine.create_execution_context()
        self.context.set_input_shape(self.input_name, (self.max_batch, *self.image_shape))
        out_shape = tuple(self.context.get_tensor_shape(self.output_name))
        self.num_classes = int(np.prod(out_shape[1:]))
        in_bytes = self.max_batch * int(np.prod(self.image_shape)) * self.input_dtype.itemsize
        out_bytes = self.max_batch * self.num_classes * self.output_dtype.itemsize
        self._d_input = self._malloc(in_bytes)
        self._d_output = self._malloc(out_bytes)
        self._h_input = self._pinned(in_bytes, self.input_dtype, (self.max_batch, *self.image_shape))
        self._h_output = self._pinned(out_bytes, self.output_dtype, (self.max_batch, self.num_classes))
        self._stream = self._check(cudart.cudaStreamCreate(), "cudaStreamCreate")
        self.context.set_tensor_address(self.input_name, self._d_input)
        self.context.set_tensor_address(self.output_name, self._d_output)

    # -- CUDA helpers
    def _check(self, result, what: str):
        error, *values = result if isinstance(result, tuple) else (result,)
        if int(error) != 0:
            _, text = self._cudart.cudaGetErrorString(error)
            raise CheckFailed(f"{what} failed: {text.decode() if isinstance(text, bytes) else text}")
        return values[0] if len(values) == 1 else (values or None)

    def _malloc(self, size: int) -> int:
        pointer = int(self._check(self._cudart.cudaMalloc(size), "cudaMalloc"))
        self._allocations.append(("device", pointer))
        return pointer

    def _pinned(self, size: int, dtype: np.dtype, shape: tuple) -> np.ndarray:
        pointer = int(self._check(self._cudart.cudaMallocHost(size), "cudaMallocHost"))
        self._allocations.append(("host", pointer))
        buffer = (ctypes.c_byte * size).from_address(pointer)
        return np.frombuffer(buffer, dtype=dtype).reshape(shape)

    # -- running
    def __call__(self, batch) -> np.ndarray:
        """NCHW batch (numpy, or anything ``np.asarray`` takes; a torch CPU tensor works) -> float32 logits."""
        array = np.asarray(batch)
        if array.ndim == 3:
            array = array[None]
        count = array.shape[0]
        if tuple(array.shape[1:]) != self.image_shape or not self.min_batch <= count <= self.max_batch:
            raise UsageError(
                f"this engine takes {self.min_batch}..{self.max_batch} x {' x '.join(map(str, self.image_shape))} batches, got {array.shape}"
            )
        cudart = self._cudart
        host_in = self._h_input[:count]
        np.copyto(host_in, array, casting="same_kind")
        if not self.context.set_input_shape(self.input_name, (count, *self.image_shape)):
            raise CheckFailed(f"TensorRT refused input shape {(count, *self.image_shape)}")
        kind = cudart.cudaMemcpyKind
        self._check(cudart.cudaMemcpyAsync(self._d_input, host_in.ctypes.data, host_in.nbytes, kind.cudaMemcpyHostToDevice, self._stream), "copy in")
        if not self.context.execute_async_v3(int(self._stream)):
            raise CheckFailed("TensorRT execute_async_v3 failed (see TensorRT's log above)")
        host_out = self._h_output[:count]
        self._check(cudart.cudaMemcpyAsync(host_out.ctypes.data, self._d_output, host_out.nbytes, kind.cudaMemcpyDeviceToHost, self._stream), "copy out")
        self._check(cudart.cudaStreamSynchronize(self._stream), "cudaStreamSynchronize")
        return host_out.astype(np.float32, copy=True)

    def layer_information(self) -> str:
        """TensorRT's engine inspector output (JSON): the layers and, on Jetson, which ran on the DLA."""
        inspector = self.engine.create_engine_inspector()
        return inspector.get_engine_information(self._trt.LayerInformationFormat.JSON)

    # -- cleanup
    def close(self) -> None:
        cudart = self._cudart
        if self._stream is not None:
            cudart.cudaStreamSynchronize(self._stream)
            cudart.cudaStreamDestroy(self._stream)
            self._stream = None
        while self._allocations:
            kind, pointer = self._allocations.pop()
            (cudart.cudaFree if kind == "device" else cudart.cudaFreeHost)(pointer)
        self.context = None

    def __enter__(self) -> "EngineRunner":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
