"""``--plot`` for every command that draws (bench, curves, diagnose): the format from the file name's
suffix, refused before any work when it cannot be drawn, and a figure rendered to bytes in that format."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

from ..core.errors import UsageError
from ..core.io import check_output_path

PLOT_FORMATS = ("png", "svg", "pdf")  # what matplotlib's default (Agg, SVG, PDF) backends write without extras


def figure_class():
    """matplotlib's ``Figure`` (an optional dependency, imported only for ``--plot``; no pyplot state)."""
    from matplotlib.figure import Figure

    return Figure


def plot_format(path: Path) -> str:
    """The plot's format, from the file name's suffix (``plot.SVG`` -> ``svg``)."""
    return Path(path).suffix.lower().lstrip(".")


def _listed(formats: tuple[str, ...]) -> str:
    names = [f".{name}" for name in formats]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def check_plot_path(path: Path | None, formats: tuple[str, ...] = PLOT_FORMATS, option: str = "--plot") -> Path | None:
    """Refuse, with a one-line ``UsageError`` before any work, a plot whose suffix is not one of
    ``formats``, a path that cannot be written, or a missing matplotlib; the path, or None when not asked."""
    if path is None:
        return None
    if plot_format(path) not in formats:
        raise UsageError(f"{option} {path}: the file name must end in {_listed(formats)}")
    checked = check_output_path(path, option)
    try:
        figure_class()
    except ImportError:
        raise UsageError(f"{option} needs matplotlib (pip install -r requirements.txt)") from None
    return checked


def figure_bytes(figure, fmt: str) -> bytes:
    """``figure`` saved in ``fmt`` (one of ``PLOT_FORMATS``), as the bytes of the file."""
    buffer = BytesIO()
    figure.savefig(buffer, format=fmt, dpi=120)
    return buffer.getvalue()
