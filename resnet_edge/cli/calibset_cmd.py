"""``resnet-edge calibset``: write a reproducible calibration-set manifest."""

from __future__ import annotations

from pathlib import Path

import click

from ..core import defaults
from ..core.errors import UsageError
from ..data import PRESETS
from ..quantize.calibset import make_calibset, write_calibset


@click.command()
@click.option("--data", required=True, metavar="SPEC", help="DIR (ImageFolder), cifar10:DIR or shapes[:N].")
@click.option("--per-class", type=click.IntRange(min=1), metavar="K", help="K images of every class.")
@click.option("--count", type=click.IntRange(min=1), metavar="N", help="N images drawn over the whole split.")
@click.option("--seed", default=defaults.CALIB_SEED, show_default=True, type=int, help="Seed of the draw: the same arguments give the same set.")
@click.option("--split", default=defaults.CALIB_SPLIT, show_default=True, type=click.Choice(["train", "val"]), help="Calibrate on training images; keep val for validation.")
@click.option("--preset", type=click.Choice(list(PRESETS)), help="Preprocessing the set is meant for (default: cifar for 32-pixel sets, imagenet for folders).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), metavar="calibration/NAME.json")
@click.option("--force", is_flag=True, help="Replace an existing file.")
def calibset(data, per_class, count, seed, split, preset, out, force) -> None:
    """Draw a calibration set (image paths, sha256s, seed, class coverage) for `compile --calib-set`."""
    made = make_calibset(data, per_class=per_class, count=count, seed=seed, split=split, preset=preset)
    if out.exists() and not force:
        raise UsageError(f"{out} already exists; pass --force to replace it or choose another --out")
    write_calibset(made, out, force=force)
    if made.missing_classes:
        shown = ", ".join(made.missing_classes[:10])
        click.echo(f"warning: {len(made.missing_classes)} classes have no image ({shown}); use --per-class for full coverage", err=True)
    click.echo(f"{out}: {made.summary()}")
