"""The ``sensitivity`` ranking as a text table."""

from __future__ import annotations

from ..pipelines.sensitivity import SensitivityResult


def _points(value: float | None) -> str:
    return "" if value is None else f"{value:+.2f}"


def format_table(result: SensitivityResult, top: int | None = None) -> str:
    """The ranking as a table: one row per layer, most sensitive first (the first ``top`` rows)."""
    lines = [
        f"INT8 sensitivity ({result.mode}, {result.method} calibration, {result.num_images} images): FP32 top-1 "
        f"{result.fp32_top1:.2f}%, all layers INT8 {result.int8_top1:.2f}% (drop {result.int8_drop:.2f} pts)",
        "",
        f"  {'rank':>4}  {'layer':<24}{'kind':<14}{'only: drop':>12}{'revert: gain':>14}{'KL score':>11}",
    ]
    shown = result.layers if top is None else result.layers[:top]
    for entry in shown:
        lines.append(
            f"  {entry.rank:>4}  {entry.layer:<24}{entry.kind:<14}{_points(entry.only_drop):>12}"
            f"{_points(entry.revert_gain):>14}{entry.kl_score:>11.3g}"
        )
    if top is not None and len(result.layers) > top:
        lines.append(f"  ... {len(result.layers) - top} more layers (all in the JSON report)")
    lines.append("")
    lines.append("only: drop = FP32 top-1 - top-1 with just this layer INT8; revert: gain = top-1 with this layer in float - all-INT8 top-1 (points)")
    return "\n".join(lines)
