"""``--calib-method auto`` on the ONNX Q/DQ path: every candidate's ranges quantize the graph in the
target's Q/DQ form and run with ONNX Runtime on the CPU (the simulator of that form) on held-out images.

The statistics are collected once, on the non-held-out images; ``quantize.auto`` derives the
candidates from them, scores them and chooses.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Iterable

import torch

from . import auto
from .onnx_collect import collect_stats, run_logits
from .ranges import compute_range

log = logging.getLogger(__name__)

# Each candidate's Q/DQ graph is scored as ONNX Runtime runs it on the CPU with its graph optimisations
# on (integer kernels where it fuses DQ -> op -> Q): the numbers ``validate`` measures for the ONNX
# artifact of either form, and 3-5x faster than the unfused run (the bundle's ``simulator()``), whose
# logits differ from it by integer-requantization rounding only.
SCORE_OPTIMIZED = True

Ranges = dict[str, tuple[float, float]]


def candidate_tables(stats: dict, symmetric: bool) -> dict[str, Ranges]:
    """Candidate label -> tensor -> (lowest, highest), every candidate from the same statistics."""
    return {
        label: {name: compute_range(stat, method, symmetric, **params) for name, stat in stats.items()}
        for label, (method, params) in auto.CANDIDATES.items()
    }


def auto_ranges(
    prepared: Path,
    batches: Iterable[torch.Tensor],
    symmetric: bool,
    quantize: Callable[[Ranges, Path], None],
    work_dir: Path,
) -> tuple[Ranges, auto.AutoChoice]:
    """Choose the ranges of ``prepared`` (the FP32 graph) by scoring every candidate on held-out images.

    ``quantize(ranges, path)`` writes the Q/DQ graph of the target's form with ``ranges`` to ``path``:
    the graph that is built at the end, so the score is the build's own simulator's.
    """
    split = auto.split_held_out(batches)
    stats, seen = collect_stats(prepared, split.calibration, True, work_dir)
    log.info(f"calibration: auto — statistics of {len(stats)} tensors from {seen} images, "
             f"{len(split.held_out_indices)} held out for scoring")
    tables = candidate_tables(stats, symmetric)
    reference = run_logits(prepared, split.held_out)
    trial = Path(work_dir) / "auto-trial.onnx"

    def evaluate(ranges: Ranges) -> torch.Tensor:
        quantize(ranges, trial)
        return run_logits(trial, split.held_out, optimize=SCORE_OPTIMIZED)

    choice = auto.choose(tables, evaluate, reference, split)
    choice.log_summary()
    return auto.chosen_ranges(tables, choice), choice


__all__ = ["auto_ranges", "candidate_tables"]
