"""``curves``: read training runs, check they are comparable, order them as the paper predicts, and
write the JSON report (and the plot, through the renderer the reports layer gives)."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from ...core.errors import UsageError
from ...core.io import check_output_path, write_atomic, write_json
from .ordering import PairCheck, ordering_checks
from .runs import RunCurves, dataset_identity, read_run

REPORT_SCHEMA = "resnet-edge-curves-report"

log = logging.getLogger(__name__)


@dataclass
class CurvesOptions:
    """The ``curves`` command's options as plain values (the CLI fills this in)."""

    runs: tuple[Path, ...]
    report: Path | None = None
    plot: Path | None = None
    allow_mixed: bool = False
    command: str | None = None


@dataclass
class CurvesResult:
    """The runs' curves, the paper's ordering checked pair by pair, and the datasets they ran on."""

    runs: list[RunCurves]
    pairs: list[PairCheck]
    datasets: list[str]
    warnings: list[str] = field(default_factory=list)
    command: str | None = None
    written: dict[str, Path] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """The JSON report: per run its summary figures and every epoch; per pair the check."""
        runs = [
            {"path": run.path, "label": run.label, "arch": run.arch, "kind": run.kind, "family": run.family, "depth": run.depth,
             "data": run.data, "planned_epochs": run.planned_epochs, "complete": run.complete, "note": run.note,
             **run.summary(), "epochs": [asdict(point) for point in run.points]}
            for run in self.runs
        ]
        pairs = [{**asdict(pair), "verdict": pair.verdict} for pair in self.pairs]
        return {"schema": REPORT_SCHEMA, "schema_version": 1, "command": self.command, "datasets": self.datasets,
                "mixed_datasets": len(self.datasets) > 1, "runs": runs, "pairs": pairs,
                "pairs_following": sum(pair.follows for pair in self.pairs), "warnings": self.warnings}


def _check_distinct(run_dirs: tuple[Path, ...]) -> None:
    seen = Counter(Path(run_dir).expanduser().resolve() for run_dir in run_dirs)
    repeated = [str(path) for path, count in seen.items() if count > 1]
    if repeated:
        raise UsageError(f"run {repeated[0]} was given more than once; pass each run directory once")


def _label_uniquely(runs: list[RunCurves]) -> None:
    """Runs of the same arch (two seeds, two recipes) are told apart by their directory names."""
    counts = Counter(run.arch for run in runs)
    for run in runs:
        if counts[run.arch] > 1:
            run.label = f"{run.arch} ({Path(run.path).name})"


def _datasets(runs: list[RunCurves], allow_mixed: bool) -> list[str]:
    datasets = list(dict.fromkeys(dataset_identity(run.data) for run in runs))
    if len(datasets) > 1 and not allow_mixed:
        which = "; ".join(f"{run.label} on {run.data}" for run in runs)
        raise UsageError(f"the runs were trained on different datasets ({which}); compare runs on one dataset or pass --allow-mixed")
    return datasets


def compare_runs(options: CurvesOptions, render_plot: Callable[[dict], bytes] | None = None) -> CurvesResult:
    """Read every run, refuse runs on different datasets (unless ``allow_mixed``), check the paper's
    ordering, and write ``--report`` (and ``--plot`` through ``render_plot(report) -> bytes``)."""
    if not options.runs:
        raise UsageError("pass at least one run directory (the --out of resnet-edge train)")
    check_output_path(options.report, "--report")
    check_output_path(options.plot, "--plot")
    _check_distinct(options.runs)
    runs = [read_run(run_dir) for run_dir in options.runs]
    _label_uniquely(runs)
    datasets = _datasets(runs, options.allow_mixed)
    result = CurvesResult(runs=runs, pairs=ordering_checks(runs), datasets=datasets, command=options.command)
    for run in runs:  # warned only once every run was read and found comparable: an error stays one line
        if run.note:
            log.warning(run.note)
            result.warnings.append(run.note)
    if options.report is not None:
        result.written["report"] = write_json(options.report, result.to_dict())
    if options.plot is not None and render_plot is not None:
        result.written["plot"] = write_atomic(options.plot, render_plot(result.to_dict()))
    return result
