"""``resnet-edge export-config``: Triton and DeepStream configs written from a bundle's manifest."""

from __future__ import annotations

from pathlib import Path

import click

from ..pipelines.export_config import ExportOptions, ExportResult, export_config


def _parity_lines(result: ExportResult) -> list[str]:
    parity = result.parity
    lines = [f"nvinfer preprocessing on {parity.images} images (top-1 %, agreement with exact %):"]
    for variant in parity.top1:
        top1 = "n/a" if parity.top1[variant] is None else f"{parity.top1[variant]:.2f}"
        lines.append(f"  {variant:<14} top-1 {top1:>6}  agreement {parity.agreement[variant]:6.2f}")
    if parity.labelled:
        exact = parity.top1["exact"]
        lines.append(f"  cost of the single scale: {exact - parity.top1['nvinfer-scale']:+.2f} pts; "
                     f"with nvinfer's scaling filter: {exact - parity.top1['nvinfer']:+.2f} pts")
    return lines


@click.command("export-config")
@click.argument("bundle_dir", metavar="BUNDLE", type=click.Path(path_type=Path))
@click.option("--triton", type=click.Path(file_okay=False, path_type=Path), metavar="DIR", help="Triton model repository to add the bundle to (DIR/NAME).")
@click.option("--deepstream", type=click.Path(file_okay=False, path_type=Path), metavar="DIR", help="Directory for a Gst-nvinfer classifier config.")
@click.option("--name", metavar="NAME", help="Triton model name. Default: the bundle directory's name.")
@click.option("--instances", default=1, show_default=True, type=int, metavar="N", help="Triton instance_group count.")
@click.option("--scale-rule", default="minimax", show_default=True, type=click.Choice(["minimax", "least-squares"]), help="How nvinfer's single scale is chosen.")
@click.option("--scaling-filter", default="bilinear", show_default=True, type=click.Choice(["nearest", "bilinear"]), help="nvinfer's scaling-filter.")
@click.option("--data", metavar="SPEC", help="With --deepstream: measure the top-1 cost of nvinfer's preprocessing on these images.")
@click.option("--images", default=256, show_default=True, type=int, metavar="N", help="How many --data images.")
@click.option("--force", is_flag=True, help="Replace existing output directories.")
def export_config_command(bundle_dir: Path, **options) -> None:
    """Write serving configs for a compiled BUNDLE: a Triton model-repository entry and/or a DeepStream nvinfer config."""
    result = export_config(ExportOptions(bundle=bundle_dir, **options))
    if result.triton is not None:
        click.echo(f"triton: {result.written['triton']}")
        for command in result.triton.commands:
            click.echo(f"  {command}")
        for note in result.triton.notes:
            click.echo(f"  note: {note}")
    if result.deepstream is not None:
        scale = result.deepstream.scale
        click.echo(f"deepstream: {result.written['deepstream']}")
        click.echo(f"  net-scale-factor {scale.scale:.9g} ({scale.rule}): worst channel {100 * scale.max_rel_error:.3f} %, "
                   f"mean {100 * scale.mean_rel_error:.3f} % off the exact per-channel scales")
        for note in result.deepstream.notes:
            click.echo(f"  note: {note}")
    if result.parity is not None:
        for line in _parity_lines(result):
            click.echo(line)
