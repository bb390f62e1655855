"""Training runs laid out as ``resnet-edge train`` leaves them, without training: ``metrics.jsonl`` lines
with the trainer's fields and a ``last.pth`` checkpoint recording arch, data and the run's config
(untrained weights; no optimizer state, which ``curves`` does not read). For the curves CLI tests and
the bad-input battery's curves cases; tests/pipelines/test_curves.py reads real runs."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from resnet_edge.data import SHAPE_CLASSES, get_preset
from resnet_edge.models import create_model, get_spec
from resnet_edge.train import TrainConfig
from resnet_edge.weights import save_checkpoint


def epoch_record(epoch: int, train_error: float, val_error: float, best_val_error: float) -> dict:
    """One ``metrics.jsonl`` line as the trainer writes it (resnet_edge/train/trainer.py, ``_train``)."""
    return {"epoch": epoch, "train_loss": round(2 * train_error, 4), "train_acc1": round(1 - train_error, 4), "val_loss": round(2 * val_error, 4),
            "val_acc1": round(1 - val_error, 4), "best_val_acc1": round(1 - best_val_error, 4), "lr": 0.1}


def write_run(run_dir: Path, arch: str, data: str, train_errors: list[float], val_errors: list[float], planned_epochs: int | None = None) -> Path:
    """A run of ``arch`` on ``data`` whose epochs had these errors; ``planned_epochs`` > len: still running."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True)
    config = TrainConfig(arch=arch, data=data, out=str(run_dir), epochs=planned_epochs or len(train_errors))
    records = [epoch_record(epoch, train, val, min(val_errors[:epoch])) for epoch, (train, val) in enumerate(zip(train_errors, val_errors), start=1)]
    model = create_model(arch, num_classes=len(SHAPE_CLASSES))
    save_checkpoint(run_dir / "last.pth", model, arch, list(SHAPE_CLASSES), get_preset(get_spec(arch).preprocessing),
                    **(records[-1] if records else {}), data=data, config=asdict(config))
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(record) + "\n" for record in records))
    return run_dir


def empty_run(paths: dict, **_) -> None:
    """{run}: a run whose metrics.jsonl holds no complete epoch yet (the first line is half written)."""
    run = write_run(Path(paths["run"]), "resnet20", "shapes", [], [], planned_epochs=3)
    (run / "metrics.jsonl").write_text(json.dumps(epoch_record(1, 0.5, 0.5, 0.5))[:25])


def mixed_runs(paths: dict, **_) -> None:
    """{tmp}/plain20 on the shapes set and {tmp}/plain56 on CIFAR-10."""
    write_run(Path(paths["tmp"]) / "plain20", "plain20", "shapes", [0.5, 0.3], [0.5, 0.35])
    write_run(Path(paths["tmp"]) / "plain56", "plain56", "cifar10:/data/cifar10", [0.6, 0.4], [0.6, 0.45])
