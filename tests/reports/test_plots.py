"""``reports.plots``: the one ``--plot`` check bench, curves and diagnose share, and rendering by suffix."""

from __future__ import annotations

import pytest

from resnet_edge.core.errors import UsageError
from resnet_edge.reports import curves, plots


def test_format_comes_from_the_suffix_and_unknown_ones_are_refused(tmp_path):
    pytest.importorskip("matplotlib")
    assert plots.plot_format(tmp_path / "a.SVG") == "svg"
    for name in ("a.png", "a.svg", "a.pdf"):
        assert plots.check_plot_path(tmp_path / name) == tmp_path / name
    with pytest.raises(UsageError, match=r"--plot .*a\.gif: the file name must end in \.png, \.svg or \.pdf$"):
        plots.check_plot_path(tmp_path / "a.gif")
    with pytest.raises(UsageError, match=r"must end in \.png or \.svg$"):  # curves passes its own formats
        curves.check_plot_path(tmp_path / "a.pdf")
    assert plots.check_plot_path(None) is None and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt, magic", [("png", b"\x89PNG"), ("svg", b"<?xml"), ("pdf", b"%PDF")])
def test_figure_bytes_are_in_the_asked_format(fmt, magic):
    pytest.importorskip("matplotlib")
    figure = plots.figure_class()(figsize=(2, 2))
    figure.subplots().plot([1, 2], [3, 4])
    assert plots.figure_bytes(figure, fmt).lstrip()[: len(magic)] == magic
