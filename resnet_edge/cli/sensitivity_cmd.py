"""``resnet-edge sensitivity``: rank the layers of a model by what INT8 quantization costs each."""

from __future__ import annotations

from pathlib import Path

import click

from ..backends import CALIBRATION_METHODS
from ..models import list_models


@click.command()
@click.option("--arch", required=True, type=click.Choice(list_models()), metavar="ARCH", help="Registry name, e.g. resnet50 or resnet20.")
@click.option("--weights", type=click.Path(dir_okay=False, path_type=Path), help="A resnet-edge checkpoint or torchvision state_dict. Default: torchvision's local cache for ARCH.")
@click.option("--data", required=True, metavar="SPEC", help="Validation images (its val split): DIR, cifar10:DIR or shapes[:N].")
@click.option("--calib-data", metavar="SPEC", help="Calibration images, drawn as compile draws them (train split, fixed seed).")
@click.option("--calib-set", type=click.Path(dir_okay=False, path_type=Path), metavar="calibration/NAME.json", help="A calibration-set manifest written by `resnet-edge calibset`.")
@click.option("--calib-images", type=int, metavar="N", help="How many calibration images (default: 512 from --calib-data, the whole --calib-set).")
@click.option("--calib-method", default="entropy", show_default=True, type=click.Choice(CALIBRATION_METHODS), help="How activation ranges are chosen.")
@click.option("--val-images", type=int, metavar="N", help="Use only the first N validation images.")
@click.option("--mode", default="both", show_default=True, type=click.Choice(["only", "revert", "both"]), help="only: quantize one layer at a time; revert: keep one layer in float in an INT8 model; both.")
@click.option("--layers", multiple=True, metavar="PATTERN", help="Measure only the layers matching this pattern (repeatable), e.g. 'layer4.*' or fc.")
@click.option("--top", type=int, metavar="N", help="Print only the N most sensitive layers.")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE.json", help="Write the ranking as JSON.")
@click.option("--device", default="auto", show_default=True, type=click.Choice(["auto", "cpu", "cuda"]), help="Where to calibrate and evaluate.")
def sensitivity(**options) -> None:
    """Quantize one layer at a time (and/or keep one layer in float at a time) and rank the layers by
    their top-1 change on validation data, with ModelOpt's INT8 simulation (as TensorRT builds it)."""
    from ..quantize.sensitivity import format_table, run_sensitivity
    from .validate_cmd import command_line

    options["command"] = command_line(click.get_current_context())
    result, written = run_sensitivity(log=lambda text: click.echo(text, err=True), **options)
    click.echo(format_table(result, options["top"]))
    if written is not None:
        click.echo(f"report: {written}")
