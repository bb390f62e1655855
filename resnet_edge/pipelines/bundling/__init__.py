"""Weights (+ calibration data) -> a verified bundle: the build sequence the ``compile`` and ``retarget``
commands share.

Modules in the order the data flows: ``options`` (what is asked, checked alone), ``plan`` (backend,
target, batch, device: refused before anything loads), ``fallback`` (``--max-top1-drop``: the layers
kept out of INT8), ``run`` (weights -> calibration -> build -> check -> bundle), ``check`` (agreement
and top-1), ``manifest``.
"""

from .options import CompileOptions, CompileResult
from .plan import plan_build
from .run import Finish, build_bundle

__all__ = ["CompileOptions", "CompileResult", "Finish", "build_bundle", "plan_build"]
