"""The figures of ``diagnose``: per-block SQNR and cosine, where a series diverges, and the verdict.

The definitions in prose: docs/validate-report.md ("diagnose").
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

SERIES_AGAINST_FP32 = ("simulator", "artifact")
# Above this SQNR (noise under 1 % of the amplitude) a block never counts as diverged, however far it fell.
CLEAN_SQNR = 40.0


class SeriesStats:
    """Accumulates, per block, sum ref^2, sum (x - ref)^2 and the per-image cosines over batches."""

    def __init__(self, blocks: Sequence[str]) -> None:
        self.blocks = list(blocks)
        self.signal = [0.0] * len(blocks)
        self.noise = [0.0] * len(blocks)
        self.cosines = [0.0] * len(blocks)
        self.images = 0

    def update(self, reference: dict[str, torch.Tensor], actual: dict[str, torch.Tensor]) -> None:
        """Add one batch: ``{block: tensor}`` of the reference and of the series."""
        count = 0
        for index, block in enumerate(self.blocks):
            ref = reference[block].double().flatten(1)
            got = actual[block].double().reshape(ref.shape)
            self.signal[index] += float((ref * ref).sum())
            self.noise[index] += float(((got - ref) ** 2).sum())
            self.cosines[index] += float(torch.nn.functional.cosine_similarity(got, ref, dim=1, eps=1e-12).sum())
            count = ref.shape[0]
        self.images += count

    def sqnr(self, index: int) -> float | None:
        """SQNR in dB (None when there is no signal; 200 dB stands for identical)."""
        if self.signal[index] == 0:
            return None
        if self.noise[index] == 0:
            return 200.0
        return round(10 * math.log10(self.signal[index] / self.noise[index]), 3)

    def cosine(self, index: int) -> float | None:
        return round(self.cosines[index] / self.images, 6) if self.images else None


def divergence(sqnrs: Sequence[float | None], blocks: Sequence[str], min_sqnr: float, max_drop: float) -> dict | None:
    """The first block whose SQNR is below ``min_sqnr``, or below ``CLEAN_SQNR`` and more than ``max_drop``
    dB below the previous block's: ``{"block", "index", "sqnr_db", "reason"}``; None when none is."""
    previous = None
    for index, (block, value) in enumerate(zip(blocks, sqnrs)):
        if value is None:
            continue
        if value < min_sqnr:
            return {"block": block, "index": index, "sqnr_db": value, "reason": f"SQNR {value:.1f} dB < {min_sqnr:g} dB"}
        if previous is not None and previous - value > max_drop and value < CLEAN_SQNR:
            return {"block": block, "index": index, "sqnr_db": value,
                    "reason": f"SQNR fell {previous - value:.1f} dB (> {max_drop:g}) from the previous block"}
        previous = value
    return None


def verdict(diverged: dict, has_simulator: bool) -> dict:
    """Where the loss comes from: ``quantization`` (the simulator already diverges), ``engine`` (the
    artifact diverges where the simulator does not, earlier, or away from its simulator) or ``none``."""
    simulator, artifact = diverged.get("simulator"), diverged.get("artifact")
    apart = diverged.get("artifact_vs_simulator")
    if has_simulator and simulator is not None and (artifact is None or artifact["index"] >= simulator["index"]):
        return {"source": "quantization", "block": simulator["block"],
                "why": f"the INT8 simulator already diverges from FP32 at {simulator['block']} ({simulator['reason']}): "
                       f"its ranges lose it; try sensitivity --layers '{simulator['block']}*' or compile --max-top1-drop"}
    if artifact is not None:
        where = "its simulator does not" if has_simulator else "there is no simulator to compare with"
        return {"source": "engine", "block": artifact["block"],
                "why": f"the artifact diverges from FP32 at {artifact['block']} ({artifact['reason']}) and {where}"}
    if apart is not None:
        return {"source": "engine", "block": apart["block"],
                "why": f"the artifact differs from its own simulator at {apart['block']} ({apart['reason']})"}
    return {"source": "none", "block": None, "why": "no block output diverges"}
