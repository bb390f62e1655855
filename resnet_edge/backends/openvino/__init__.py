"""The OpenVINO backend: ``backend`` (build, load, simulator), ``runtime`` (the CPU plugin and the
predictor), ``probe`` (block outputs for ``diagnose``), ``profile`` (``bench --profile``)."""

from .backend import OpenVinoBackend
from .runtime import OvPredictor, compile_file, cpu_capabilities, half_type

__all__ = ["OpenVinoBackend", "OvPredictor", "compile_file", "cpu_capabilities", "half_type"]
