"""Rendering the ``curves`` report: the per-run table, the paper's ordering, and the Figure 6-style plot."""

from __future__ import annotations

from pathlib import Path

from . import plots
from .plots import figure_bytes, plot_format

PLOT_FORMATS = ("png", "svg")  # curves draws PNG and SVG only
TRAIN_WIDTH, VAL_WIDTH = 0.9, 2.4  # the paper's figures: thin training curves, bold validation/test curves
__all__ = ["PLOT_FORMATS", "check_plot_path", "format_table", "plot_format", "render_plot"]  # plot_format: plots' own


def check_plot_path(path: Path | None) -> Path | None:
    """Refuse, before any work, a ``--plot`` that is neither .png nor .svg or that cannot be written."""
    return plots.check_plot_path(path, PLOT_FORMATS)


def _matplotlib():
    """matplotlib's ``Figure``, its default colour cycle and an integer tick locator (imported only for
    ``--plot``; no pyplot state)."""
    from matplotlib import rcParams
    from matplotlib.ticker import MaxNLocator

    return plots.figure_class(), rcParams["axes.prop_cycle"].by_key()["color"], MaxNLocator


def _percent(value: float) -> str:
    return f"{100 * value:.2f}%"


def _run_line(run: dict) -> str:
    epochs = f"{run['epochs_read']}/{run['planned_epochs']}" if run["planned_epochs"] else str(run["epochs_read"])
    best_val = f"{_percent(run['best_val_error'])} ({run['best_val_epoch']})"
    return (f"  {run['label']:<22}{run['kind']:<10}{run['depth']:>6}{epochs:>10}{_percent(run['final_train_error']):>11}"
            f"{_percent(run['final_val_error']):>10}{_percent(run['best_train_error']):>12}{best_val:>16}"
            f"{run['final_train_loss']:>12.4g}{run['final_val_loss']:>10.4g}")


def _pair_line(pair: dict) -> str:
    figures = f"epoch {pair['epoch']}: {_percent(pair['deeper_train_error'])} vs {_percent(pair['shallower_train_error'])}"
    return f"  {pair['predicted']:<36}{figures:<32}{pair['verdict']}"


def format_table(report: dict) -> str:
    """Final and best errors per run, then each pair of depths against the order the paper predicts."""
    lines = [
        f"curves: {len(report['runs'])} run(s) on {', '.join(report['datasets'])}"
        + (" (MIXED datasets: --allow-mixed)" if report["mixed_datasets"] else ""),
        "  errors are 1 - top-1: training error over each epoch's (augmented) batches, validation error after the epoch",
        f"  {'run':<22}{'kind':<10}{'depth':>6}{'epochs':>10}{'train err':>11}{'val err':>10}{'best train':>12}{'best val (ep)':>16}"
        f"{'train loss':>12}{'val loss':>10}",
        *(_run_line(run) for run in report["runs"]),
        "",
    ]
    if not report["pairs"]:
        lines.append("paper's ordering: no two runs of one kind at different depths (train e.g. plain20 and plain56); nothing to order")
        return "\n".join(lines)
    lines.append("paper's ordering (training error at the last epoch both runs reached; deeper plain >= shallower, deeper residual <= shallower):")
    lines.extend(_pair_line(pair) for pair in report["pairs"])
    lines.append(f"{report['pairs_following']} of {len(report['pairs'])} pair(s) follow the paper's ordering")
    return "\n".join(lines)


def _paper_name(run: dict) -> str:
    """plain-20 / ResNet-20, as the paper names them (the run label when two runs share an arch)."""
    name = f"plain-{run['depth']}" if run["kind"] == "plain" else f"ResNet-{run['depth']}"
    return name if run["label"] == run["arch"] else f"{name} {run['label'][len(run['arch']):].strip()}"


def _draw_panel(ax, runs: list[dict], colours: dict[int, str], title: str) -> None:
    for run in sorted(runs, key=lambda run: run["depth"]):
        epochs = [point["epoch"] for point in run["epochs"]]
        colour = colours[run["depth"]]
        ax.plot(epochs, [100 * point["train_error"] for point in run["epochs"]], color=colour, linewidth=TRAIN_WIDTH)
        ax.plot(epochs, [100 * point["val_error"] for point in run["epochs"]], color=colour, linewidth=VAL_WIDTH, label=_paper_name(run))
    if runs:
        ax.legend(title="thin: training, bold: validation", fontsize=8, title_fontsize=8)
    else:
        ax.text(0.5, 0.5, f"no {title.split()[0].lower()} runs", ha="center", va="center", transform=ax.transAxes, color="grey")
    ax.set_title(title)
    ax.set_xlabel("epoch")
    ax.grid(True, alpha=0.3)


def render_plot(report: dict, fmt: str = "png") -> bytes:
    """Figure 6 of the paper from the runs: error (%) against epoch, plain nets left, ResNets right,
    one colour per depth, thin lines training error and bold lines validation error."""
    figure_class, cycle, integer_ticks = _matplotlib()
    figure = figure_class(figsize=(11, 4.2), layout="constrained")
    plain_ax, residual_ax = figure.subplots(1, 2, sharey=True)
    depths = sorted({run["depth"] for run in report["runs"]})
    colours = {depth: cycle[index % len(cycle)] for index, depth in enumerate(depths)}
    _draw_panel(plain_ax, [run for run in report["runs"] if run["kind"] == "plain"], colours, "Plain networks")
    _draw_panel(residual_ax, [run for run in report["runs"] if run["kind"] == "residual"], colours, "Residual networks (ResNets)")
    plain_ax.set_ylabel("error (%)")
    for ax in (plain_ax, residual_ax):
        ax.xaxis.set_major_locator(integer_ticks(integer=True))
    figure.suptitle(f"training (thin) and validation (bold) error on {', '.join(report['datasets'])}", fontsize=9)
    return figure_bytes(figure, fmt)
