"""``resnet-edge sensitivity``: which layers cost accuracy when quantized (``analysis``: the measurement;
``run``: the command's sequence). The per-layer switches it shares with the ``--max-top1-drop``
fallback live in ``quantize.sensitivity``."""

from .analysis import MODES, REPORT_SCHEMA, SensitivityResult, analyze, select_layers
from .run import SensitivityOptions, SensitivityRun, run_sensitivity

__all__ = ["MODES", "REPORT_SCHEMA", "SensitivityOptions", "SensitivityResult", "SensitivityRun", "analyze", "run_sensitivity",
           "select_layers"]
