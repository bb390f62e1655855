"""What this host has for TensorRT builds: torch-tensorrt (imported behind one helper), its version
pairing with torch, the DLA cores TensorRT's builder sees, and whether its TensorRT can build for them."""

from __future__ import annotations

import warnings

from ...core.errors import UsageError
from . import api, dla_routes


def import_torch_tensorrt():
    """``import torch_tensorrt`` (it prints and warns a lot on import); a ``UsageError`` when it fails."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import torch_tensorrt
    except Exception as error:  # ImportError, or a missing libnvinfer / CUDA runtime raising OSError
        raise UsageError(
            f"torch-tensorrt cannot be imported ({type(error).__name__}: {str(error).splitlines()[0][:200]}); "
            f"on a datacenter GPU: {api.DATACENTER_INSTALL}; on Jetson Orin: {api.JETSON_INSTALL}"
        ) from None
    return torch_tensorrt


def _tensorrt():
    """``import tensorrt`` (TensorRT's own Python bindings)."""
    import tensorrt

    return tensorrt


def require_torch_tensorrt(versions: api.TrtVersions) -> str:
    """The API generation of the installed torch-tensorrt; a ``UsageError`` saying what to install otherwise."""
    generation = api.api_generation(versions.torch_tensorrt)
    if versions.tensorrt is None:
        raise UsageError(f"torch-tensorrt {versions.torch_tensorrt} is installed but TensorRT's Python package is not; reinstall torch-tensorrt")
    torch_version = api.parse_version(versions.torch)
    trt_torch = api.parse_version(versions.torch_tensorrt)
    if torch_version and trt_torch and torch_version[:2] != trt_torch[:2]:
        raise UsageError(
            f"torch-tensorrt {versions.torch_tensorrt} needs torch {trt_torch[0]}.{trt_torch[1]}.x but torch {versions.torch} is "
            f"installed; install the pair (torch 2.14 + torch-tensorrt 2.14, or JetPack 6's torch 2.8 + torch-tensorrt 2.8)"
        )
    return generation


def check_dla_support(generation: str, versions: api.TrtVersions, dla_core: int | None, available_cores: int | None,
                      precision: str = "fp16", min_dla_fraction: float | None = None) -> None:
    """Refuse, before any work, a DLA build the installed TensorRT cannot do (``dla_routes``): no DLA in
    TensorRT 11.0-11.4.0 or after 10.7, INT8 on TensorRT 11, a strongly typed TensorRT that reports no DLA
    cores, a ``--min-dla-fraction`` out of range or without ``--dla-core``. The DLA build does not go
    through torch-tensorrt, so ``generation`` does not change the answer (callers pass it as before)."""
    dla_routes.check_min_dla_fraction(dla_core, min_dla_fraction)
    if dla_core is None:
        return
    route = dla_routes.check_route_request(versions.tensorrt, precision)
    if route == dla_routes.STRONGLY_TYPED and available_cores == 0:
        raise UsageError(dla_routes.NO_DLA.format(version=f"{versions.tensorrt}, which reports no DLA cores here"))


def dla_core_count() -> int | None:
    """NVDLA cores TensorRT's builder sees here (0 on datacenter GPUs), or None when TensorRT cannot be asked."""
    try:
        trt = _tensorrt()
        return int(trt.Builder(trt.Logger(trt.Logger.ERROR)).num_DLA_cores)
    except Exception:
        return None
