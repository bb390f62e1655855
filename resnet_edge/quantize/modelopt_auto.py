"""``--calib-method auto`` on the ModelOpt path: the fake-quant model is the simulator of TensorRT's Q/DQ form.

The activation statistics are collected once, by the ``RangeCalibrator`` of every activation
quantizer, on the non-held-out calibration images; each candidate's amax per quantizer comes from
those statistics (``RangeCalibrator.compute_amax``) and is loaded into the quantizers without running
the calibration data again; the fake-quant model then runs the held-out images (``quantize.auto``).
"""

from __future__ import annotations

import logging
from typing import Callable

import torch
from torch import nn

from . import auto
from .quantizers import iter_quantizers
from .range_calibrator import RangeCalibrator

log = logging.getLogger(__name__)

SCORE_BATCH = 64


def _calibrated(model: nn.Module) -> dict[str, nn.Module]:
    return {
        name: quantizer for name, quantizer in iter_quantizers(model)
        if isinstance(getattr(quantizer, "_calibrator", None), RangeCalibrator) and not quantizer._calibrator.stats.empty
    }


def candidate_tables(model: nn.Module) -> dict[str, dict[str, float]]:
    """Candidate label -> activation quantizer -> amax, from the statistics the quantizers kept."""
    quantizers = _calibrated(model)
    return {
        label: {name: float(quantizer._calibrator.compute_amax(method, **params)) for name, quantizer in quantizers.items()}
        for label, (method, params) in auto.CANDIDATES.items()
    }


def load_amaxes(model: nn.Module, amaxes: dict[str, float]) -> None:
    """Set each named quantizer's amax (on its own device)."""
    quantizers = dict(iter_quantizers(model))
    for name, value in amaxes.items():
        quantizer = quantizers[name]
        device = quantizer.amax.device if isinstance(getattr(quantizer, "amax", None), torch.Tensor) else "cpu"
        quantizer.amax = torch.tensor(value, dtype=torch.float32, device=device)


def model_logits(model: nn.Module, images: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """``model``'s float logits for ``images``, in batches of ``SCORE_BATCH`` on ``device``, back on the CPU."""
    outputs = []
    with torch.no_grad():
        for start in range(0, len(images), SCORE_BATCH):
            outputs.append(model(images[start : start + SCORE_BATCH].to(device)).float().cpu())
    return torch.cat(outputs)


def choose_amaxes(quantized: nn.Module, reference: torch.Tensor, split: auto.HeldOutSplit,
                  device: torch.device | str, evaluate: Callable[[dict[str, float]], torch.Tensor] | None = None) -> auto.AutoChoice:
    """Score every candidate on ``split.held_out`` with the fake-quant model, load the chosen amaxes, and
    return the choice. ``reference``: the FP32 model's logits on the held-out images."""
    tables = candidate_tables(quantized)

    def run(amaxes: dict[str, float]) -> torch.Tensor:
        load_amaxes(quantized, amaxes)
        return model_logits(quantized, split.held_out, device)

    choice = auto.choose(tables, evaluate or run, reference, split)
    load_amaxes(quantized, auto.chosen_ranges(tables, choice))
    choice.log_summary()
    return choice


__all__ = ["candidate_tables", "choose_amaxes", "load_amaxes", "model_logits"]
