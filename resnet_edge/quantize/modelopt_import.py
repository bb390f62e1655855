"""The one door to NVIDIA ModelOpt: its import, its version, and keeping its chatter off the terminal.

ModelOpt is an optional dependency (INT8 on the TensorRT backend); everything in ``quantize`` that
needs it calls ``require_modelopt()`` and reaches the rest of the package through the module it
returns (``mtq.nn.TensorQuantizer``, ``mtq.utils.export_torch_mode``, ...).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import io
import logging
import warnings
from typing import Iterator

from ..core.errors import UsageError

MODELOPT_INSTALL = "pip install nvidia-modelopt==0.47.0 huggingface_hub==2.4.0 requests==2.34.2"


def modelopt_version() -> str | None:
    """The installed ``nvidia-modelopt`` version, or ``None``."""
    try:
        return importlib.metadata.version("nvidia-modelopt")
    except importlib.metadata.PackageNotFoundError:
        return None


def require_modelopt():
    """``modelopt.torch.quantization``; a ``UsageError`` saying what to install when it is missing.

    ModelOpt imports ``huggingface_hub`` and ``requests`` at import time without declaring them,
    so a bare ``pip install nvidia-modelopt`` can still fail here; the message names all three.
    """
    # ModelOpt imports torch.utils.cpp_extension, which logs "No CUDA runtime is found" on every CPU
    # host although nothing here builds ModelOpt's CUDA extensions.
    cpp_extension_log = logging.getLogger("torch.utils.cpp_extension")
    level = cpp_extension_log.level
    try:
        cpp_extension_log.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            # ModelOpt warns about every optional plugin (transformers, megatron, ...) it cannot import.
            warnings.simplefilter("ignore")
            return importlib.import_module("modelopt.torch.quantization")
    except ImportError as error:
        raise UsageError(f"INT8 calibration needs NVIDIA ModelOpt ({error}); install it with: {MODELOPT_INSTALL}") from None
    finally:
        cpp_extension_log.setLevel(level)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """ModelOpt prints "Inserted N quantizers", progress bars and plugin warnings; keep the CLI quiet."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


__all__ = ["MODELOPT_INSTALL", "modelopt_version", "quiet", "require_modelopt"]
