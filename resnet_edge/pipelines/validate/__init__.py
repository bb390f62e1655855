"""``resnet-edge validate``: is the compiled bundle still as accurate as its FP32 reference?

``run`` (the sequence), ``checks`` (the report as data: thresholds, schema), ``baseline`` (``--baseline``).
"""

from .run import REPORT_SCHEMA, REPORT_VERSION, ValidateOptions, ValidateResult, validate_bundle

__all__ = ["REPORT_SCHEMA", "REPORT_VERSION", "ValidateOptions", "ValidateResult", "validate_bundle"]
