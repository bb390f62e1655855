"""The fused residual-block operators, ``torch.ops.resnet_edge.*``, implemented in C++/CUDA (csrc/ops).

Importing this package loads the compiled extension ``resnet_edge._C``, whose static initialisers
register the ops with torch's dispatcher, and registers their fake kernels (``fake``) so that
``torch.export`` and ``torch.compile`` can trace them. A missing or broken extension does not make
the import fail: ``fused_ops_status()`` says whether the ops are usable and why not, ``require()``
raises ``ExtensionNotBuiltError``, and so does reading ``fused_basic_block``/``fused_bottleneck``.
The Torch-TensorRT converters live in ``resnet_edge.ops.tensorrt_converters``, imported only by
code that compiles with TensorRT.
"""

from __future__ import annotations

import importlib.util

import torch

from ..core.errors import UsageError
from .int8_block import int8_residual_block  # registers the INT8 block op (pure PyTorch, no extension)


class ExtensionNotBuiltError(UsageError, ImportError):
    """The compiled operator library is missing or cannot be loaded."""


_BUILD_HINT = "build it with `pip install --no-build-isolation -e .` (or `make setup`) from the repository root"

try:
    from .. import _C  # noqa: F401  (loading the shared object is what registers the ops)
except ImportError as error:  # the reason is kept for fused_ops_status() and require()
    _LOAD_ERROR: ImportError | None = error
else:
    _LOAD_ERROR = None
    from . import fake  # noqa: F401  (registers the fake kernels of the ops _C defines)

_EXTENSION_OPS = ("fused_basic_block", "fused_bottleneck")


def require() -> None:
    """Raise ``ExtensionNotBuiltError`` (saying how to build it) when the compiled ops are not loaded."""
    if _LOAD_ERROR is not None:
        raise ExtensionNotBuiltError(
            f"the compiled operator library resnet_edge._C could not be loaded ({_LOAD_ERROR}); {_BUILD_HINT}"
        ) from _LOAD_ERROR


def fused_ops_status(tensorrt: bool = False) -> tuple[bool, str]:
    """(whether the fused ops can be used here, a reason in words either way); never raises.

    With ``tensorrt=True`` also whether their Torch-TensorRT converters can be registered (torch-tensorrt
    is installed); the converters themselves are imported by the TensorRT backend when it builds.
    """
    if _LOAD_ERROR is not None:
        return False, f"the fused ops cannot be loaded ({type(_LOAD_ERROR).__name__}: {_LOAD_ERROR}); build them with pip install -e ."
    if not tensorrt:
        return True, "resnet_edge fused ops available"
    if importlib.util.find_spec("torch_tensorrt") is None:
        return False, "the Torch-TensorRT converters of the fused ops need torch-tensorrt, which is not installed"
    return True, "fused ops and their TensorRT converters available"


def __getattr__(name: str):
    # The extension's ops exist only when _C loaded; otherwise say how to build it.
    if name in _EXTENSION_OPS:
        require()
        return getattr(torch.ops.resnet_edge, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ExtensionNotBuiltError",
    "fused_basic_block",
    "fused_bottleneck",
    "fused_ops_status",
    "int8_residual_block",
    "require",
]
