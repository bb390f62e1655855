"""``resnet-edge demo``: the whole pipeline on the built-in shapes set, on any machine."""

from __future__ import annotations

import time
from pathlib import Path

import click

DEMO_ARCH = "resnet20"
DEMO_DATA = "shapes"


def _run_step(title: str, args: list[str]) -> None:
    """Run one ``resnet-edge`` command exactly as a user would type it."""
    from . import main  # the group this command belongs to

    click.secho(f"\n== {title}: resnet-edge {' '.join(args)}", bold=True)
    started = time.perf_counter()
    main.main(args=args, prog_name="resnet-edge", standalone_mode=False)
    click.echo(f"   ({time.perf_counter() - started:.1f} s)")


@click.command()
@click.option("--out", default="runs/demo", show_default=True, type=click.Path(file_okay=False), help="Where the run and the bundle go.")
@click.option("--epochs", default=12, show_default=True, type=click.IntRange(min=1), help="Training epochs.")
def demo(out: str, epochs: int) -> None:
    """Train a ResNet-20 on the built-in shapes set and run every pipeline stage on it."""
    root = Path(out)
    run_dir = root / "train"
    started = time.perf_counter()
    _run_step(
        "train",
        ["train", "--arch", DEMO_ARCH, "--data", DEMO_DATA, "--epochs", str(epochs), "--batch-size", "32", "--lr", "0.05", "--out", str(run_dir)],
    )
    click.secho(f"\ndemo finished in {time.perf_counter() - started:.0f} s; checkpoint: {run_dir / 'best.pth'}", fg="green")
