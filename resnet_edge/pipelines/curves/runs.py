"""One training run read back from its directory: the per-epoch curves and what was trained on what.

``resnet-edge train`` writes, per epoch, one JSON object per line to ``metrics.jsonl`` with the fields
``epoch`` (1-based), ``train_loss``, ``train_acc1``, ``val_loss``, ``val_acc1``, ``best_val_acc1``
and ``lr`` (resnet_edge/train/trainer.py, ``_train``). The file is parsed here rather than through
the trainer because ``pipelines`` and ``train`` are sibling layers that may not import each other;
the field names above are the contract. The line records no arch or data: those come from the run's
``last.pth`` checkpoint (``arch``, ``data`` and the ``config`` the run was started with).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ...core.errors import UsageError
from ...data.source import DEFAULT_SHAPES_SIZE
from ...models import get_spec
from ...weights import read_weights_file

METRICS_FILE = "metrics.jsonl"
CHECKPOINT_FILE = "last.pth"
REQUIRED_FIELDS = ("epoch", "train_loss", "train_acc1", "val_loss", "val_acc1")


@dataclass(frozen=True)
class EpochPoint:
    """One epoch of a run; errors are fractions (1 - top-1 accuracy)."""

    epoch: int
    train_error: float
    val_error: float
    train_loss: float
    val_loss: float
    lr: float | None = None


@dataclass
class RunCurves:
    """A run's curves and identity. ``planned_epochs`` is the run's ``--epochs``; fewer ``points``
    mean the run is still training or was stopped (``note`` says which epochs were read)."""

    path: str
    label: str
    arch: str
    depth: int
    plain: bool
    family: str
    data: str
    planned_epochs: int | None
    points: list[EpochPoint] = field(default_factory=list)
    note: str | None = None

    @property
    def kind(self) -> str:
        return "plain" if self.plain else "residual"

    @property
    def complete(self) -> bool:
        return self.planned_epochs is None or self.points[-1].epoch >= self.planned_epochs

    def final(self) -> EpochPoint:
        return self.points[-1]

    def at_epoch(self, epoch: int) -> EpochPoint:
        """The record of ``epoch``, or of the last epoch before it that was recorded."""
        return [point for point in self.points if point.epoch <= epoch][-1]

    def summary(self) -> dict:
        """Final and best errors and the final losses (what the table and the report show)."""
        last = self.final()
        return {
            "epochs_read": last.epoch,
            "final_train_error": last.train_error,
            "final_val_error": last.val_error,
            "final_train_loss": last.train_loss,
            "final_val_loss": last.val_loss,
            "best_train_error": min(point.train_error for point in self.points),
            "best_val_error": min(point.val_error for point in self.points),
            "best_val_epoch": min(self.points, key=lambda point: (point.val_error, point.epoch)).epoch,
        }


def dataset_identity(spec: str) -> str:
    """The data spec as two runs on the same data would share it: ``shapes`` is ``shapes:2400``, and a
    path loses trailing and doubled slashes (relative paths stay as given: the training cwd is unknown)."""
    if spec == "shapes":
        return f"shapes:{DEFAULT_SHAPES_SIZE}"
    kind, _, rest = spec.partition(":")
    if kind == "shapes":
        return spec
    if kind == "cifar10" and rest:
        return f"cifar10:{os.path.normpath(rest)}"
    return os.path.normpath(spec)


def _point(record, line_number: int, path: Path) -> EpochPoint:
    if not isinstance(record, dict) or any(not isinstance(record.get(key), (int, float)) for key in REQUIRED_FIELDS):
        raise UsageError(f"{path} line {line_number} is not an epoch record (it needs {', '.join(REQUIRED_FIELDS)}); re-create the run with resnet-edge train")
    return EpochPoint(
        epoch=int(record["epoch"]),
        train_error=round(1.0 - record["train_acc1"], 4),
        val_error=round(1.0 - record["val_acc1"], 4),
        train_loss=record["train_loss"],
        val_loss=record["val_loss"],
        lr=record.get("lr"),
    )


def parse_metrics(text: str, path: Path) -> tuple[list[EpochPoint], bool]:
    """(the complete epochs in epoch order, whether an unfinished last line was left out).

    A last line without its newline that is not yet valid JSON is a write in progress (a copy, or
    another writer: the trainer itself replaces the file whole) and is skipped; a damaged line before
    it is an error. A resumed run may repeat an epoch: its latest record wins.
    """
    lines = text.split("\n")
    tail = lines.pop()  # "" when the text ends with a newline; otherwise a last line still being written
    by_epoch: dict[int, EpochPoint] = {}
    for number, line in enumerate(lines, start=1):
        if line.strip():
            point = _point(_json_line(line, number, path), number, path)
            by_epoch[point.epoch] = point
    unfinished = False
    if tail.strip():
        try:
            point = _point(json.loads(tail), len(lines) + 1, path)
            by_epoch[point.epoch] = point
        except json.JSONDecodeError:
            unfinished = True
    return [by_epoch[epoch] for epoch in sorted(by_epoch)], unfinished


def _json_line(line: str, number: int, path: Path):
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        raise UsageError(f"{path} line {number} is not valid JSON; re-create the run with resnet-edge train") from None


def _checkpoint_facts(run_dir: Path) -> tuple[str, str, int | None]:
    """(arch, data spec, planned epochs) from the run's last checkpoint."""
    checkpoint = run_dir / CHECKPOINT_FILE
    if not checkpoint.is_file():
        raise UsageError(f"{run_dir} has {METRICS_FILE} but no {CHECKPOINT_FILE}, which records the arch and data; pass a run directory written by resnet-edge train")
    payload = read_weights_file(checkpoint)
    if not isinstance(payload.get("arch"), str):
        raise UsageError(f"{checkpoint} is not a resnet-edge training checkpoint (no arch); pass a run directory written by resnet-edge train")
    config = payload.get("config") if isinstance(payload.get("config"), dict) else {}
    planned = config.get("epochs")
    return payload["arch"], str(payload.get("data") or config.get("data") or "unknown"), planned if isinstance(planned, int) else None


def _check_run_dir(run_dir: Path) -> Path:
    if not run_dir.exists():
        raise UsageError(f"run directory {run_dir} does not exist; pass the --out of resnet-edge train")
    if not run_dir.is_dir():
        raise UsageError(f"{run_dir} is not a directory; pass the --out of resnet-edge train")
    metrics = run_dir / METRICS_FILE
    if not metrics.is_file():
        raise UsageError(f"{run_dir} has no {METRICS_FILE}; pass a run directory written by resnet-edge train (or wait for its first epoch)")
    return metrics


def read_run(run_dir: Path) -> RunCurves:
    """The curves of the run in ``run_dir``; a ``UsageError`` when it is no run or has no complete epoch.

    A run that has not reached its planned epochs (still training, or stopped) is read up to its last
    complete epoch; ``note`` says so (the caller warns).
    """
    run_dir = Path(run_dir).expanduser()
    metrics = _check_run_dir(run_dir)
    points, unfinished = parse_metrics(metrics.read_text(errors="replace"), metrics)
    if not points:
        raise UsageError(f"run {run_dir} has no complete epoch in {METRICS_FILE} (an empty run); wait for its first epoch or pass another run")
    arch, data, planned = _checkpoint_facts(run_dir)
    spec = get_spec(arch)
    run = RunCurves(path=str(run_dir), label=arch, arch=arch, depth=spec.depth, plain=spec.plain, family=spec.family,
                    data=data, planned_epochs=planned, points=points)
    if not run.complete or unfinished:
        planned_text = f" of {planned}" if planned else ""
        run.note = f"run {run_dir} ({arch}) is still in progress or was stopped: read its {len(points)} complete epoch(s), up to epoch {points[-1].epoch}{planned_text}"
    return run
