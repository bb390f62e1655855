"""Which DLA build the installed TensorRT can do, decided from its version before any work.

Read from the bindings of the 10.3.0, 10.13.3.9, 11.1.0.106 and 11.4.0.106 wheels (``tensorrt.so``: the
``BuilderFlag`` enum strings and ``ITensor``'s methods) and from NVIDIA's notes ("Working with DLA" and
"Strongly Typed Networks for DLA", 11.3.0 / 11.4.0 / 11.4.1; "Migrating from TensorRT 10.x to 11.x"):

``WEAKLY_TYPED`` (TensorRT 10.0-10.7; JetPack 6 ships 10.3)
    A weakly typed network and the precision flags ``FP16`` / ``INT8``. The DLA quantizes implicitly
    only (explicit Q/DQ regions fall back to the GPU), so INT8 is a *float* network whose tensors carry
    the dynamic ranges of the project's Q/DQ graph (``dla_source``), built with ``INT8`` + ``FP16``.
    ``ITensor.set_dynamic_range`` and ``BuilderFlag.INT8`` are in the 10.x bindings (deprecated since
    10.1 / 10.12, not removed). NVIDIA: "TensorRT 10.7 was the last 10.x release that supported DLA".
``STRONGLY_TYPED`` (TensorRT 11.4.1+, Jetson AGX Orin on JetPack 7.2.2+)
    ``BuilderFlag.FP16``, ``INT8``, ``OBEY/PREFER_PRECISION_CONSTRAINTS`` no longer exist (absent from the
    11.1 and 11.4 bindings) and every network is strongly typed: the tensor types decide, so the model is
    exported to ONNX in FP16 between float32 I/O casts (``dla.export_onnx``) and only ``GPU_FALLBACK`` is
    set. The DLA's INT8 is implicit quantization, which TensorRT 11 removed: INT8 on the DLA is refused.
TensorRT 11.0-11.3 have no DLA; 11.4.0 has it on Windows on ARM only: refused.
"""

from __future__ import annotations

import math

from ...core.errors import UsageError
from .api import parse_version

WEAKLY_TYPED = "weakly_typed_flags"
STRONGLY_TYPED = "strongly_typed_fp16"
DEFAULT_MIN_DLA_FRACTION = 0.9  # share of the network's convolutions that must run on the DLA

LAST_WEAKLY_TYPED = (10, 7)  # NVIDIA: the last 10.x release with DLA
FIRST_STRONGLY_TYPED = (11, 4, 1)  # DLA restored on Jetson AGX Orin (JetPack 7.2.2+)

NO_DLA = (
    "--dla-core: no DLA in this TensorRT ({version}): TensorRT 11.0-11.3 have no DLA, 11.4.1+ has it only on "
    "Jetson AGX Orin with JetPack 7.2.2+ (11.4.0 only on Windows on ARM), 10.7 was the last 10.x with DLA, and "
    "Jetson Thor has none; on JetPack 6 use torch-tensorrt 2.8 with TensorRT 10.3, or drop --dla-core to run on the GPU"
)
INT8_NEEDS_IMPLICIT = (
    "--dla-core --int8: the DLA runs INT8 only through implicit quantization, which TensorRT {version} removed; "
    "build --fp16 for the DLA here, or INT8 on JetPack 6's TensorRT 10.3"
)


def dla_route(tensorrt_version: str | None) -> str:
    """``WEAKLY_TYPED`` or ``STRONGLY_TYPED`` for the installed TensorRT; one-line ``UsageError`` where it has no DLA."""
    version = parse_version(tensorrt_version) or (0,)
    if (10,) <= version[:2] <= LAST_WEAKLY_TYPED:
        return WEAKLY_TYPED
    if version[:3] >= FIRST_STRONGLY_TYPED:
        return STRONGLY_TYPED
    raise UsageError(NO_DLA.format(version=tensorrt_version or "not installed"))


def builder_flags(route: str, precision: str) -> list[str]:
    """The ``BuilderFlag`` names a DLA build sets: only flags the route's bindings have."""
    if route == STRONGLY_TYPED:
        return ["GPU_FALLBACK"]
    return ["GPU_FALLBACK", "FP16"] + (["INT8"] if precision == "int8" else [])


def network_typing(route: str) -> str:
    """How the network's precision is decided, for the manifest."""
    if route == STRONGLY_TYPED:
        return "strongly typed: FP16 tensors from the converted ONNX, float32 I/O"
    return "weakly typed: the FP16 (and INT8) builder flags let TensorRT choose per layer"


def check_min_dla_fraction(dla_core: int | None, min_dla_fraction: float | None) -> None:
    """``--min-dla-fraction`` is a share in [0, 1] and only means something with ``--dla-core``."""
    if min_dla_fraction is None:
        return
    if dla_core is None:
        raise UsageError("--min-dla-fraction applies to --dla-core builds only; drop it or pass --dla-core N")
    if not (math.isfinite(min_dla_fraction) and 0.0 <= min_dla_fraction <= 1.0):
        raise UsageError(f"--min-dla-fraction is a share of the convolutions, 0 to 1, got {min_dla_fraction}")


def check_route_request(tensorrt_version: str | None, precision: str) -> str:
    """The route for this TensorRT and precision, or the one-line refusal (no DLA, INT8 on TensorRT 11)."""
    route = dla_route(tensorrt_version)
    if route == STRONGLY_TYPED and precision == "int8":
        raise UsageError(INT8_NEEDS_IMPLICIT.format(version=tensorrt_version))
    return route
