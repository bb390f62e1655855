"""``resnet-edge demo``: the whole pipeline on the built-in shapes set, on any machine."""

from __future__ import annotations

import time
from importlib.resources import as_file, files
from pathlib import Path

import click

from ..core import defaults

DEMO_ARCH = "resnet20"
DEMO_DATA = "shapes"
# The demo's calibration set, shipped in the package (calibration/README.md says how it was made).
DEMO_CALIB_SET = files("resnet_edge.data") / "calibsets" / "shapes-demo.json"


def _run_step(title: str, args: list[str]) -> None:
    """Run one ``resnet-edge`` command exactly as a user would type it."""
    main = click.get_current_context().find_root().command  # the group this command runs under
    click.secho(f"\n== {title}: resnet-edge {' '.join(args)}", bold=True)
    started = time.perf_counter()
    main.main(args=args, prog_name="resnet-edge", standalone_mode=False)
    click.echo(f"   ({time.perf_counter() - started:.1f} s)")


@click.command()
@click.option("--out", default=defaults.DEMO_OUT, show_default=True, type=click.Path(file_okay=False), help="Where the run and the bundle go.")
@click.option("--epochs", default=defaults.DEMO_EPOCHS, show_default=True, type=click.IntRange(min=1), help="Training epochs.")
def demo(out: str, epochs: int) -> None:
    """Train a ResNet-20 on the built-in shapes set, compile it INT8, validate it against FP32 and bench it."""
    root = Path(out)
    run_dir = root / "train"
    started = time.perf_counter()
    _run_step(
        "train",
        ["train", "--arch", DEMO_ARCH, "--data", DEMO_DATA, "--epochs", str(epochs), "--batch-size", "32", "--lr", "0.05", "--out", str(run_dir), "--force"],
    )
    bundle = root / "bundle"
    with as_file(DEMO_CALIB_SET) as calib_set:  # a real file even when the package is zipped
        _run_step(
            "compile (INT8, default backend)",
            ["compile", "--arch", DEMO_ARCH, "--weights", str(run_dir / "best.pth"), "--int8",
             "--calib-set", str(calib_set), "--val-data", DEMO_DATA, "--out", str(bundle), "--force"],
        )  # fmt: skip
    _run_step(
        "validate against FP32",
        ["validate", str(bundle), "--data", DEMO_DATA, "--report", str(root / "validate.json"), "--no-progress"],
    )
    _run_step(
        "bench against eager FP32",
        ["bench", str(bundle), "--batch-sizes", "1,8,32", "--iters", "50", "--report", str(root / "bench.json"), "--plot", str(root / "bench.png")],
    )
    click.secho(
        f"\ndemo finished in {time.perf_counter() - started:.0f} s; checkpoint {run_dir / 'best.pth'}, bundle {bundle}, "
        f"reports in {root}",
        fg="green",
    )
