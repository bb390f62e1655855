"""``resnet-edge curves``: the paper's degradation experiment (Figure 6) from your own training runs."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import click

from ..pipelines.curves import CurvesOptions, compare_runs
from ..reports.curves import check_plot_path, format_table, plot_format, render_plot
from .options import command_line, report_option


@click.command()
@click.argument("runs", metavar="RUN_DIR...", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE.png|FILE.svg",
              help="Draw the curves as the paper's Figure 6: plain and residual panels, thin training and bold validation error.")
@report_option("Write every run's per-epoch figures and the ordering checks as JSON.")
@click.option("--allow-mixed", is_flag=True, help="Compare runs trained on different datasets (refused otherwise).")
def curves(runs: tuple[Path, ...], plot: Path | None, **options) -> None:
    """Compare the training and validation error curves of RUN_DIRs written by `resnet-edge train`.

    Prints final and best errors per run and whether each pair of depths follows the order the paper
    predicts: a deeper plain net ends with a higher training error than a shallower one (degradation),
    a deeper ResNet with a lower one. A run still training is read up to its last complete epoch.
    """
    check_plot_path(plot)
    renderer = partial(render_plot, fmt=plot_format(plot)) if plot is not None else None
    result = compare_runs(CurvesOptions(runs=runs, plot=plot, command=command_line(click.get_current_context()), **options),
                          render_plot=renderer)
    click.echo(format_table(result.to_dict()))
    for kind, path in result.written.items():
        click.echo(f"{kind}: {path}")
