"""``resnet-edge doctor``: the installed stack checked against ``core/support_matrix.json`` (``run``)."""

from .run import BROKEN, MISSING, OK, WARN, Diagnosis, Row, collect_facts, detect_device, diagnose, support_matrix

__all__ = ["BROKEN", "MISSING", "OK", "WARN", "Diagnosis", "Row", "collect_facts", "detect_device", "diagnose", "support_matrix"]
