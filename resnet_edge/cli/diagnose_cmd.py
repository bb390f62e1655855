"""``resnet-edge diagnose``: which residual block loses accuracy in a compiled bundle, and why."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import click

from ..core import defaults
from ..pipelines.diagnose import DiagnoseOptions, diagnose_bundle
from ..reports.diagnose import format_table, render_plot
from ..reports.plots import check_plot_path, plot_format
from .options import command_line, device_option, report_option


@click.command()
@click.argument("bundle_dir", metavar="BUNDLE", type=click.Path(path_type=Path))
@click.option("--data", required=True, metavar="SPEC", help="Images to compare on (their val split): DIR, cifar10:DIR or shapes[:N].")
@click.option("--images", default=defaults.DIAGNOSE_IMAGES, show_default=True, type=int, metavar="N", help="How many images.")
@click.option("--reference", type=click.Path(dir_okay=False, path_type=Path), metavar="WEIGHTS", help="FP32 weights to compare with. Default: the ones the manifest names.")
@click.option("--min-sqnr", default=defaults.DIAGNOSE_MIN_SQNR, show_default=True, type=float, metavar="DB", help="A block output below this SQNR vs FP32 has diverged.")
@click.option("--max-sqnr-drop", default=defaults.DIAGNOSE_MAX_SQNR_DROP, show_default=True, type=float, metavar="DB", help="... or one whose SQNR fell more than this since the previous block.")
@report_option("Write the per-block figures and the verdict as JSON.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE.png",
              help="Plot SQNR per block (simulator and artifact); .png, .svg or .pdf, from the file name.")
@device_option("Where the artifact runs: auto is the bundle's backend choice.")
def diagnose(bundle_dir: Path, **options) -> None:
    """Compare FP32, the INT8 simulator and the deployed BUNDLE at every residual-block output.

    Prints SQNR and cosine per block, the first block where they diverge, and whether the loss comes
    from quantization (the simulator already differs) or from the engine (only the artifact does).
    Block names are those of `sensitivity --layers` and the --max-top1-drop plan.
    """
    plot = check_plot_path(options["plot"])  # before any work: the format comes from the file name
    renderer = partial(render_plot, fmt=plot_format(plot)) if plot is not None else None
    result = diagnose_bundle(DiagnoseOptions(bundle=bundle_dir, command=command_line(click.get_current_context()), **options),
                             render_plot=renderer)
    click.echo(format_table(result.to_dict()))
    for kind, path in result.written.items():
        click.echo(f"{kind}: {path}")
