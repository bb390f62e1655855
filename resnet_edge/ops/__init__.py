"""The fused residual-block operators, ``torch.ops.resnet_edge.*``, implemented in C++/CUDA (csrc/ops).

Importing this package loads the compiled extension ``resnet_edge._C``, whose static initialisers
register the ops with torch's dispatcher, and registers their fake kernels (``fake``) so that
``torch.export`` and ``torch.compile`` can trace them. The Torch-TensorRT converters live in
``resnet_edge.ops.tensorrt_converters``, imported only by code that compiles with TensorRT.
"""

import torch

from ..core.errors import UsageError


class ExtensionNotBuiltError(UsageError, ImportError):
    """The compiled operator library is missing or cannot be loaded."""


try:
    from .. import _C  # noqa: F401  (loading the shared object is what registers the ops)
except ImportError as error:
    raise ExtensionNotBuiltError(
        f"the compiled operator library resnet_edge._C could not be loaded ({error}); build it with "
        "`pip install --no-build-isolation -e .` (or `make setup`) from the repository root"
    ) from error

from . import fake  # noqa: E402,F401  (registers the fake kernels)
from .int8_block import int8_residual_block  # noqa: E402  (registers the INT8 block op)

fused_basic_block = torch.ops.resnet_edge.fused_basic_block
fused_bottleneck = torch.ops.resnet_edge.fused_bottleneck

__all__ = ["ExtensionNotBuiltError", "fused_basic_block", "fused_bottleneck", "int8_residual_block"]
