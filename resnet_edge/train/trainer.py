"""Training with the paper's recipe (§3.4, §4.2): SGD, momentum 0.9, weight decay 1e-4, BN, no dropout,
lr 0.1 divided by 10 at fixed milestones (or on plateau), the family's augmentation.

One function, ``train``, runs single-process or under ``torchrun`` (DDP). Rank 0 shows progress,
appends ``metrics.jsonl`` and writes ``last.pth`` / ``best.pth`` atomically.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from ..core import defaults
from ..core.device import resolve_device
from ..core.errors import UsageError
from ..core.io import check_output_path, write_atomic, write_json
from ..data import eval_transform, get_preset, open_data, train_transform
from ..data.loader import make_loader
from ..metrics import top1_correct
from ..models import create_model, get_spec
from ..weights import CHECKPOINT_FORMAT, read_weights_file, save_checkpoint
from .distributed import DistContext, all_reduce_sum, barrier, init_distributed, shutdown

# The paper's reference batch for lr 0.1: 128 on CIFAR (§4.2), 256 on ImageNet (§3.4).
REFERENCE_BATCH = {"cifar": 128, "imagenet": 256}
# CIFAR: lr / 10 at 32k and 48k of 64k iterations, i.e. at 50% and 75% of the run.
MILESTONE_FRACTIONS = (0.5, 0.75)
# ResNet-110 (§4.2) trains at lr/10 until the training error is below 80%.
WARMUP_ERROR = 0.8

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Everything ``resnet-edge train`` takes; recorded in every checkpoint."""

    arch: str
    data: str
    out: str
    epochs: int = defaults.TRAIN_EPOCHS
    batch_size: int = defaults.TRAIN_BATCH
    lr: float | None = None  # None: 0.1 x global batch / reference batch
    momentum: float = defaults.TRAIN_MOMENTUM
    weight_decay: float = defaults.TRAIN_WEIGHT_DECAY
    schedule: str = defaults.TRAIN_SCHEDULE  # "step" | "plateau"
    warmup: bool | None = None  # None: on for CIFAR nets deeper than 100 layers, as in the paper
    shortcut: str | None = None
    workers: int = defaults.TRAIN_WORKERS
    device: str = defaults.DEVICE
    seed: int = defaults.SEED
    resume: bool = False
    force: bool = False  # start afresh over an earlier run's checkpoints in ``out``

    def base_lr(self, family: str, world_size: int) -> float:
        """The configured lr, or the paper's 0.1 scaled linearly with the global batch."""
        if self.lr is not None:
            return self.lr
        return 0.1 * self.batch_size * world_size / REFERENCE_BATCH[family]


def _make_scheduler(config: TrainConfig, optimizer: torch.optim.Optimizer):
    if config.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=0.1, patience=3)
    milestones = sorted({max(1, math.ceil(config.epochs * f)) for f in MILESTONE_FRACTIONS})
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=0.1)


def _loader(dataset, batch_size: int, shuffle: bool, config: TrainConfig, context: DistContext, device) -> DataLoader:
    sampler = DistributedSampler(dataset, shuffle=shuffle, seed=config.seed) if context.enabled else None
    return make_loader(
        dataset,
        batch_size=batch_size,
        workers=config.workers,
        shuffle=shuffle and sampler is None,
        sampler=sampler,
        pin_memory=device.type == "cuda",
        drop_last=shuffle,
    )


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, device: torch.device, context: DistContext) -> tuple[float, float]:
    """(top-1 accuracy, mean loss) over the loader, summed across ranks."""
    model.eval()
    correct = total = loss_sum = 0.0
    for images, labels in loader:
        images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        logits = model(images)
        loss_sum += nn.functional.cross_entropy(logits, labels, reduction="sum").item()
        correct += top1_correct(logits, labels)
        total += labels.numel()
    correct, total, loss_sum = all_reduce_sum([correct, total, loss_sum], device, context)
    return correct / max(total, 1), loss_sum / max(total, 1)


class _Warmup:
    """Keeps lr at a tenth until the running training error drops below 80% (paper §4.2)."""

    def __init__(self, optimizer: torch.optim.Optimizer, active: bool) -> None:
        self.optimizer = optimizer
        self.active = active
        self.errors: list[float] = []
        if active:
            self._scale(0.1)

    def _scale(self, factor: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] *= factor

    def step(self, batch_error: float) -> None:
        if not self.active:
            return
        self.errors = (self.errors + [batch_error])[-20:]
        if len(self.errors) == 20 and sum(self.errors) / 20 < WARMUP_ERROR:
            self._scale(10.0)
            self.active = False


def _train_one_epoch(model, loader, optimizer, warmup, device, epoch, config, context) -> tuple[float, float]:
    model.train()
    if isinstance(loader.sampler, DistributedSampler):
        loader.sampler.set_epoch(epoch)
    correct = total = loss_sum = 0.0
    bar = tqdm(loader, desc=f"epoch {epoch + 1}/{config.epochs}", disable=None if context.is_main else True, leave=False, unit="batch")
    for images, labels in bar:
        images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits = model(images)
            loss = nn.functional.cross_entropy(logits, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        batch_correct = top1_correct(logits, labels)
        warmup.step(1.0 - batch_correct / labels.numel())
        correct += batch_correct
        total += labels.numel()
        loss_sum += loss.item() * labels.numel()
        bar.set_postfix(loss=f"{loss_sum / total:.3f}", acc=f"{correct / total:.3f}")
    correct, total, loss_sum = all_reduce_sum([correct, total, loss_sum], device, context)
    return correct / max(total, 1), loss_sum / max(total, 1)


def _resume_state(out: Path, config: TrainConfig, classes: tuple[str, ...]) -> dict | None:
    last = out / "last.pth"
    if not config.resume:
        return None
    if not last.is_file():
        raise UsageError(f"--resume was given but {last} does not exist; drop --resume to start a new run")
    state = read_weights_file(last)
    if state.get("arch") != config.arch:
        raise UsageError(f"{last} is a {state.get('arch')} run, not {config.arch}; use another --out or the same --arch")
    if tuple(state.get("classes", ())) != tuple(classes):
        raise UsageError(f"{last} was trained on other classes than --data {config.data}; use another --out")
    if state.get("format") != CHECKPOINT_FORMAT or not all(key in state for key in _RESUME_KEYS):
        raise UsageError(f"{last} cannot be resumed (it lacks the optimizer state); use another --out or pass --force")
    return state


_RESUME_KEYS = ("optimizer", "scheduler", "epoch")


def check_run_dir(config: TrainConfig) -> None:
    """Refuse an ``out`` holding an earlier run's checkpoints unless ``resume`` or ``force`` says what to do."""
    out = Path(config.out).expanduser()
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; pass a run directory")
    check_output_path(out / "last.pth", "--out")  # a parent we may not write: refused before any work
    earlier = [name for name in ("last.pth", "best.pth") if (out / name).exists()]
    if earlier and not (config.resume or config.force):
        raise UsageError(
            f"{out} holds an earlier run ({', '.join(earlier)}); pass --resume to continue it, --force to start afresh, or another --out"
        )


def train(config: TrainConfig) -> dict:
    """Train ``config.arch`` on ``config.data``; returns the final summary (also written as ``summary.json``).

    Rank 0 logs one line per epoch (INFO on this module's logger); other ranks log nothing.
    """
    spec = get_spec(config.arch)
    check_run_dir(config)
    source = open_data(config.data)
    if config.schedule not in defaults.TRAIN_SCHEDULES:
        raise UsageError(f"unknown schedule {config.schedule!r}; choose step or plateau")
    device = resolve_device(config.device)
    context = init_distributed(device)
    try:
        return _train(config, spec, source, device, context)
    finally:
        shutdown(context)


def _train(config, spec, source, device, context) -> dict:
    torch.manual_seed(config.seed + context.rank)
    preprocessing = get_preset(spec.preprocessing)
    out = Path(config.out)
    train_set = source.split("train", train_transform(preprocessing))
    val_set = source.split("val", eval_transform(preprocessing))
    if context.is_main and source.kind == "folder" and not source.has_splits:
        log.warning(f"{source.root} has no train/ and val/ folders; validation accuracy is measured on training images")
    per_rank_batch = max(1, config.batch_size)
    model = create_model(config.arch, num_classes=source.num_classes, shortcut=config.shortcut).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    lr = config.base_lr(spec.family, context.world_size)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=config.momentum, weight_decay=config.weight_decay)
    scheduler = _make_scheduler(config, optimizer)
    state = _resume_state(out, config, source.classes)
    start_epoch, best_acc = 0, 0.0
    if state is not None:
        model.load_state_dict(state["state_dict"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch, best_acc = state["epoch"], state.get("best_val_acc1", 0.0)
        if context.is_main:
            log.info(f"resuming {config.arch} from {out / 'last.pth'} at epoch {start_epoch}")
    train_model = DistributedDataParallel(model) if context.enabled else model
    train_loader = _loader(train_set, per_rank_batch, True, config, context, device)
    val_loader = _loader(val_set, per_rank_batch, False, config, context, device)
    if len(train_loader) == 0:
        raise UsageError(f"--data {config.data} has fewer training images than one batch ({per_rank_batch}); lower --batch-size")
    warmup = _Warmup(optimizer, config.warmup if config.warmup is not None else spec.family == "cifar" and spec.depth > 100)
    if context.is_main:
        out.mkdir(parents=True, exist_ok=True)
        if state is None:  # a fresh run starts a fresh history
            (out / "metrics.jsonl").unlink(missing_ok=True)
        log.info(
            f"training {config.arch} on {config.data}: {len(train_set)} train / {len(val_set)} val images, "
            f"{source.num_classes} classes, {context.world_size} process(es) on {device}, lr {lr:g}"
        )
    summary: dict = {}
    for epoch in range(start_epoch, config.epochs):
        train_acc, train_loss = _train_one_epoch(train_model, train_loader, optimizer, warmup, device, epoch, config, context)
        val_acc, val_loss = evaluate(model, val_loader, device, context)
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(val_acc)
        else:
            scheduler.step()
        best_acc = max(best_acc, val_acc)
        summary = {
            "epoch": epoch + 1,
            "train_loss": round(train_loss, 4),
            "train_acc1": round(train_acc, 4),
            "val_loss": round(val_loss, 4),
            "val_acc1": round(val_acc, 4),
            "best_val_acc1": round(best_acc, 4),
            "lr": optimizer.param_groups[0]["lr"],
        }
        if context.is_main:
            _write_epoch(out, model, config, source, preprocessing, optimizer, scheduler, summary, val_acc >= best_acc)
            log.info(
                f"epoch {epoch + 1}/{config.epochs}  loss {train_loss:.3f}  train {train_acc:.2%}  "
                f"val {val_acc:.2%}  (best {best_acc:.2%})"
            )
        barrier(context)
    return summary


def _write_epoch(out, model, config, source, preprocessing, optimizer, scheduler, summary, is_best) -> None:
    extra = {
        **summary,
        "data": config.data,
        "config": asdict(config),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
    }
    save_checkpoint(out / "last.pth", model, config.arch, list(source.classes), preprocessing, **extra)
    if is_best:
        save_checkpoint(out / "best.pth", model, config.arch, list(source.classes), preprocessing, **extra)
    # Appended by rewriting the whole (small) file atomically: a failed write never leaves half a line.
    metrics = out / "metrics.jsonl"
    history = metrics.read_text() if metrics.is_file() else ""
    write_atomic(metrics, history + json.dumps(summary) + "\n")
    write_json(out / "summary.json", summary)
