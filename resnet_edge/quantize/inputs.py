"""What an INT8 build is given: the calibration images (``CalibrationData``) and how to quantize (``QuantOptions``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import torch


@dataclass(frozen=True)
class QuantOptions:
    """How an INT8 build quantizes, for every backend that builds INT8."""

    per_channel_weights: bool = True
    quantize_residual: bool = True  # quantize the shortcut input of each residual add
    keep_float: tuple[str, ...] = ()  # layers kept out of INT8 (the ``--max-top1-drop`` plan)
    # Stored activation ranges (a bundle's ``calibration-cache.json``): quantize with exactly these, no
    # calibration run (``retarget``). Only backends with ``takes_ranges`` accept it.
    ranges_file: Path | None = None


@dataclass
class CalibrationData:
    """Preprocessed calibration images, re-iterable: ``batches()`` yields NCHW float32 CPU tensors."""

    method: str  # one of CALIBRATION_METHODS
    batches: Callable[[], Iterable[torch.Tensor]]
    num_images: int

    def __iter__(self) -> Iterator[torch.Tensor]:
        return iter(self.batches())
