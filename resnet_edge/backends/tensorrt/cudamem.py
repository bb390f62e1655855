"""Device memory, page-locked host memory, streams and async copies for the raw-engine runner, through
cuda-python (``cuda.bindings.runtime``, formerly ``cuda.cudart``; preferred: wheels for x86 and Jetson)
or pycuda (``pycuda.driver``; many Jetson images have it). Both expose the same small interface here.
"""

from __future__ import annotations

import ctypes
import importlib
import importlib.util

import numpy as np

from ...core.errors import CheckFailed, UsageError

CUDA_PYTHON = "cuda-python"
PYCUDA = "pycuda"
INSTALL = "pip install cuda-python (JetPack 6: cuda-python==12.6.*), or pycuda"


def _import_first(names: tuple[str, ...]):
    for name in names:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None


def _spec(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a parent package that is missing or broken
        return False


def available_binding() -> str | None:
    """``"cuda-python"`` or ``"pycuda"``: the binding the runner would use here (cuda-python first), or
    ``None``; imports nothing (so a compile can refuse early without touching CUDA)."""
    if _spec("cuda.bindings.runtime") or _spec("cuda.cudart"):
        return CUDA_PYTHON
    if _spec("pycuda.driver"):
        return PYCUDA
    return None


class CudaPython:
    """cuda-python's runtime API (``cudaMalloc``, ``cudaMemcpyAsync``, ... return ``(error, value)``)."""

    name = CUDA_PYTHON

    def __init__(self, device: int) -> None:
        self.rt = _import_first(("cuda.bindings.runtime", "cuda.cudart"))
        if self.rt is None:
            raise UsageError(f"the raw-engine runner needs cuda-python or pycuda: {INSTALL}")
        self._check(self.rt.cudaSetDevice(device), "cudaSetDevice")

    def _check(self, result, what: str):
        error, *values = result if isinstance(result, tuple) else (result,)
        if int(error) != 0:
            _, text = self.rt.cudaGetErrorString(error)
            raise CheckFailed(f"{what} failed: {text.decode() if isinstance(text, bytes) else text}")
        return values[0] if len(values) == 1 else (values or None)

    def malloc(self, size: int) -> int:
        return int(self._check(self.rt.cudaMalloc(size), "cudaMalloc"))

    def free(self, pointer: int) -> None:
        self.rt.cudaFree(pointer)

    def pinned(self, shape: tuple, dtype: np.dtype) -> tuple[np.ndarray, int]:
        size = int(np.prod(shape)) * np.dtype(dtype).itemsize
        pointer = int(self._check(self.rt.cudaMallocHost(size), "cudaMallocHost"))
        buffer = (ctypes.c_byte * size).from_address(pointer)
        return np.frombuffer(buffer, dtype=dtype).reshape(shape), pointer

    def free_pinned(self, handle: int) -> None:
        self.rt.cudaFreeHost(handle)

    def stream(self):
        return self._check(self.rt.cudaStreamCreate(), "cudaStreamCreate")

    def stream_handle(self, stream) -> int:
        return int(stream)

    def to_device(self, pointer: int, host: np.ndarray, stream) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._check(self.rt.cudaMemcpyAsync(pointer, host.ctypes.data, host.nbytes, kind, stream), "copy in")

    def to_host(self, host: np.ndarray, pointer: int, stream) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._check(self.rt.cudaMemcpyAsync(host.ctypes.data, pointer, host.nbytes, kind, stream), "copy out")

    def synchronize(self, stream) -> None:
        self._check(self.rt.cudaStreamSynchronize(stream), "cudaStreamSynchronize")

    def destroy_stream(self, stream) -> None:
        self.rt.cudaStreamSynchronize(stream)
        self.rt.cudaStreamDestroy(stream)

    def close(self) -> None:
        pass


class PyCuda:
    """pycuda's driver API on the device's primary context (the one torch and cuda-python use too)."""

    name = PYCUDA

    def __init__(self, device: int) -> None:
        self.driver = _import_first(("pycuda.driver",))
        if self.driver is None:
            raise UsageError(f"the raw-engine runner needs cuda-python or pycuda: {INSTALL}")
        self.driver.init()
        self.context = self.driver.Device(device).retain_primary_context()
        self.context.push()
        self._device = {}

    def malloc(self, size: int) -> int:
        allocation = self.driver.mem_alloc(size)
        self._device[int(allocation)] = allocation  # keeps it alive until free()
        return int(allocation)

    def free(self, pointer: int) -> None:
        allocation = self._device.pop(pointer, None)
        if allocation is not None:
            allocation.free()

    def pinned(self, shape: tuple, dtype: np.dtype) -> tuple[np.ndarray, object]:
        array = self.driver.pagelocked_empty(shape, dtype)
        return array, array

    def free_pinned(self, handle) -> None:
        base = getattr(handle, "base", None)
        if base is not None and hasattr(base, "free"):
            base.free()

    def stream(self):
        return self.driver.Stream()

    def stream_handle(self, stream) -> int:
        return int(stream.handle)

    def to_device(self, pointer: int, host: np.ndarray, stream) -> None:
        self.driver.memcpy_htod_async(pointer, host, stream)

    def to_host(self, host: np.ndarray, pointer: int, stream) -> None:
        self.driver.memcpy_dtoh_async(host, pointer, stream)

    def synchronize(self, stream) -> None:
        stream.synchronize()

    def destroy_stream(self, stream) -> None:
        stream.synchronize()

    def close(self) -> None:
        if self.context is not None:
            self.context.pop()
            self.context.detach()
            self.context = None


def open_binding(device: int, prefer: str | None = None):
    """A ``CudaPython`` or ``PyCuda`` for ``device``: ``prefer`` if given, else cuda-python when it
    imports, else pycuda; a ``UsageError`` naming both when neither is installed."""
    order = [CudaPython, PyCuda]
    if prefer == PYCUDA:
        order.reverse()
    elif prefer not in (None, CUDA_PYTHON):
        raise UsageError(f"unknown CUDA binding {prefer!r}; choose {CUDA_PYTHON} or {PYCUDA}")
    for cls in order if prefer is None else order[:1]:
        try:
            return cls(device)
        except UsageError:
            continue
    raise UsageError(f"the raw-engine runner needs cuda-python or pycuda: {INSTALL}")
