"""``curves``: the paper's degradation experiment (Figure 6) read back from ``resnet-edge train`` runs."""

from .ordering import PairCheck, check_pair, ordering_checks
from .run import REPORT_SCHEMA, CurvesOptions, CurvesResult, compare_runs
from .runs import EpochPoint, RunCurves, dataset_identity, parse_metrics, read_run

__all__ = [
    "REPORT_SCHEMA",
    "CurvesOptions",
    "CurvesResult",
    "EpochPoint",
    "PairCheck",
    "RunCurves",
    "check_pair",
    "compare_runs",
    "dataset_identity",
    "ordering_checks",
    "parse_metrics",
    "read_run",
]
