"""``resnet-edge compile``: weights + (calibration data) -> a verified deployment bundle.

Modules in the order the data flows: ``options`` (what is asked, checked alone), ``plan`` (backend,
target, batch, device: refused before anything loads), ``..calibration`` (the INT8 images), ``run``
(weights -> calibration -> build -> check -> bundle), ``check`` (agreement and top-1), ``manifest``.
"""

from .options import CompileOptions, CompileResult
from .run import compile_bundle

__all__ = ["CompileOptions", "CompileResult", "compile_bundle"]
