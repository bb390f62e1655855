"""Rendering the ``diagnose`` report: the per-block table and the SQNR plot."""

from __future__ import annotations

from .plots import figure_bytes, figure_class


def _fmt(value, spec: str) -> str:
    return "n/a" if value is None else f"{value:{spec}}"


def format_table(report: dict) -> str:
    """Per block: SQNR (dB) and cosine of the simulator and the artifact against FP32, then the verdict."""
    series = [name for name in ("simulator", "artifact", "artifact_vs_simulator") if f"{name}_sqnr_db" in report["rows"][0]]
    titles = {"simulator": "simulator", "artifact": "artifact", "artifact_vs_simulator": "artifact~sim"}
    bundle = report["bundle"]
    lines = [f"diagnose {bundle['arch']} {bundle['precision']} {bundle['backend']} ({bundle['target']}) on "
             f"{report['num_images']} images of {bundle['data']}: SQNR dB / cosine vs FP32 at each block output",
             *([f"  artifact read as: {report['artifact_reading']}"] if report.get("artifact_reading") else []),
             f"  {'block':<12}" + "".join(f"{titles[name]:>24}" for name in series)]
    diverged = {name: (report["diverged"].get(name) or {}).get("block") for name in series}
    for row in report["rows"]:
        cells = []
        for name in series:
            mark = " <" if diverged[name] == row["block"] else "  "
            cells.append(f"{_fmt(row[f'{name}_sqnr_db'], '8.2f')} / {_fmt(row[f'{name}_cosine'], '.5f')}{mark}".rjust(24))
        lines.append(f"  {row['block']:<12}" + "".join(cells))
    limits = report["thresholds"]
    lines.append(f"  (< marks the first divergence: SQNR < {limits['min_sqnr_db']:g} dB or a fall > {limits['max_sqnr_drop_db']:g} dB)")
    verdict = report["verdict"]
    lines.append(f"verdict: {verdict['source']}" + (f" at {verdict['block']}" if verdict["block"] else "") + f": {verdict['why']}")
    return "\n".join(lines)


def render_plot(report: dict, fmt: str = "png") -> bytes:
    """SQNR per block of the simulator and the artifact against FP32, with the divergence threshold."""
    figure = figure_class()(figsize=(9, 4), layout="constrained")
    ax = figure.subplots()
    blocks = [row["block"] for row in report["rows"]]
    positions = list(range(len(blocks)))
    for name, style in (("simulator", "--"), ("artifact", "-")):
        key = f"{name}_sqnr_db"
        if key in report["rows"][0]:
            ax.plot(positions, [row[key] if row[key] is not None else float("nan") for row in report["rows"]], style, marker="o", label=name)
    ax.axhline(report["thresholds"]["min_sqnr_db"], color="grey", linewidth=0.8, linestyle=":", label="min SQNR")
    ax.set_xticks(positions, blocks, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("SQNR vs FP32 (dB)")
    ax.grid(True, alpha=0.3)
    ax.legend()
    bundle = report["bundle"]
    figure.suptitle(f"{bundle['arch']} {bundle['precision']} {bundle['backend']}: verdict {report['verdict']['source']}", fontsize=9)
    return figure_bytes(figure, fmt)
