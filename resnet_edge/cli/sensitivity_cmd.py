"""``resnet-edge sensitivity``: rank the layers of a model by what INT8 quantization costs each."""

from __future__ import annotations

import click

from ..core import defaults
from ..pipelines.sensitivity import SensitivityOptions, run_sensitivity
from ..reports.sensitivity import format_table
from .options import arch_option, calibration_options, class_map_options, command_line, device_option, report_option, weights_option


@click.command()
@arch_option("Registry name, e.g. resnet50 or resnet20.")
@weights_option()
@click.option("--data", required=True, metavar="SPEC", help="Validation images (its val split): DIR, cifar10:DIR or shapes[:N].")
@class_map_options("--data (and the calibration set)")
@calibration_options("Calibration images, drawn as compile draws them (train split, fixed seed).")
@click.option("--val-images", type=int, metavar="N", help="Use only the first N validation images.")
@click.option("--mode", default=defaults.SENSITIVITY_MODE, show_default=True, type=click.Choice(defaults.SENSITIVITY_MODES), help="only: quantize one layer at a time; revert: keep one layer in float in an INT8 model; both.")
@click.option("--layers", multiple=True, metavar="PATTERN", help="Measure only the layers matching this pattern (repeatable), e.g. 'layer4.*' or fc.")
@click.option("--top", type=int, metavar="N", help="Print only the N most sensitive layers.")
@report_option("Write the ranking as JSON.")
@device_option("Where to calibrate and evaluate.")
def sensitivity(**options) -> None:
    """Quantize one layer at a time (and/or keep one layer in float at a time) and rank the layers by
    their top-1 change on validation data, with ModelOpt's INT8 simulation (as TensorRT builds it)."""
    run = run_sensitivity(SensitivityOptions(**options, command=command_line(click.get_current_context())))
    click.echo(format_table(run.result, options["top"]))
    if run.report is not None:
        click.echo(f"report: {run.report}")
