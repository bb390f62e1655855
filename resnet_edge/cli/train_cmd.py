"""``resnet-edge train``: the paper's recipe on any --data spec; multi-GPU/multi-node via torchrun."""

from __future__ import annotations

import logging
import sys

import click

from ..core import defaults, logs
from ..train import TrainConfig, train as run_training
from .options import arch_option, device_option


def _log_to_stdout() -> None:
    """Send the package's log lines to stdout, keeping the -q/-v level: train has always printed its
    progress there (one line per epoch, from rank 0), where torchrun users and scripts read it."""
    logger = logging.getLogger(logs.ROOT)
    level = logger.level
    logs.configure(0, stream=sys.stdout)
    logger.setLevel(level or logging.INFO)


@click.command()
@arch_option("Registry name, e.g. resnet20 or resnet50 (see `resnet-edge models`).")
@click.option("--data", required=True, help="DIR (ImageFolder, train/ and val/), cifar10:DIR, or shapes[:N].")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Run directory: last.pth, best.pth, metrics.jsonl, summary.json.")
@click.option("--epochs", default=defaults.TRAIN_EPOCHS, show_default=True, type=click.IntRange(min=1))
@click.option("--batch-size", default=defaults.TRAIN_BATCH, show_default=True, type=click.IntRange(min=1), help="Per process.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), help="Default: 0.1 x global batch / 128 (CIFAR) or / 256 (ImageNet).")
@click.option("--weight-decay", default=defaults.TRAIN_WEIGHT_DECAY, show_default=True, type=float)
@click.option("--momentum", default=defaults.TRAIN_MOMENTUM, show_default=True, type=float)
@click.option("--schedule", default=defaults.TRAIN_SCHEDULE, show_default=True, type=click.Choice(defaults.TRAIN_SCHEDULES), help="lr/10 at 50% and 75% of the epochs, or when val accuracy plateaus.")
@click.option("--warmup/--no-warmup", default=None, help="lr/10 until training error < 80% (default: on for CIFAR nets deeper than 100 layers).")
@click.option("--shortcut", type=click.Choice(["A", "B", "C"]), help="Override the family's shortcut option.")
@click.option("--workers", default=defaults.TRAIN_WORKERS, show_default=True, type=click.IntRange(min=0), help="DataLoader worker processes.")
@device_option("Where to train: auto is the GPU when one is visible.")
@click.option("--seed", default=defaults.SEED, show_default=True, type=int)
@click.option("--resume", is_flag=True, help="Continue from OUT/last.pth.")
@click.option("--force", is_flag=True, help="Start a new run over an earlier one's checkpoints in --out (replaced as epochs finish).")
def train(**options) -> None:
    """Train a ResNet with the paper's recipe (SGD 0.9, wd 1e-4, lr 0.1 / 10 at milestones).

    Run under `torchrun --nproc-per-node N` for DistributedDataParallel on several GPUs or CPU processes.
    """
    _log_to_stdout()
    run_training(TrainConfig(**options))
