"""Per-layer INT8 sensitivity, the part ``sensitivity`` and the ``--max-top1-drop`` fallback share.

A layer is whatever owns calibrated quantizers (a convolution, the classifier, a residual add); its
quantizers are switched off (``revert``) or it alone is left on (``only``) on a model calibrated once,
and each switch is measured by an ``Evaluator``. Layers rank by top-1 points, then by KL divergence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch import nn

from . import modelopt_ptq as ptq
from .evaluation import Evaluator, Measurement


def layer_kind(model: nn.Module, layer: str) -> str:
    """What ``layer`` of ``model`` is: conv, linear, residual-add, pool, or its class name."""
    module = model.get_submodule(layer) if layer else model
    if isinstance(module, nn.Conv2d):
        return "conv"
    if isinstance(module, nn.Linear):
        return "linear"
    if hasattr(module, ptq.RESIDUAL_QUANTIZER):
        return "residual-add"
    if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AvgPool2d, nn.MaxPool2d)):
        return "pool"
    return type(module).__name__


@dataclass
class LayerSensitivity:
    """One layer's figures from the ``only`` and ``revert`` passes, its score and its rank."""

    layer: str
    kind: str
    quantizers: list[str]
    only_top1: float | None = None
    only_drop: float | None = None  # fp32 top-1 - top-1 with only this layer quantized (points)
    only_kl: float | None = None
    revert_top1: float | None = None
    revert_gain: float | None = None  # top-1 with this layer in float - full INT8 top-1 (points)
    revert_kl_gain: float | None = None  # full INT8 KL - KL with this layer in float
    score: float = 0.0  # the top-1 points this layer costs: max(only_drop, revert_gain)
    kl_score: float = 0.0  # the same in KL terms: tie-breaker
    rank: int = 0

    def finish(self) -> None:
        top1 = [v for v in (self.only_drop, self.revert_gain) if v is not None]
        kl = [v for v in (self.only_kl, self.revert_kl_gain) if v is not None]
        self.score = round(max(top1), 4) if top1 else 0.0
        self.kl_score = max(kl) if kl else 0.0


def rank_layers(entries: list[LayerSensitivity]) -> list[LayerSensitivity]:
    """Most sensitive first: by top-1 points, then by KL; model order breaks remaining ties."""
    for entry in entries:
        entry.finish()
    ranked = sorted(enumerate(entries), key=lambda item: (-item[1].score, -item[1].kl_score, item[0]))
    result = []
    for rank, (_, entry) in enumerate(ranked, start=1):
        entry.rank = rank
        result.append(entry)
    return result


def revert_pass(quantized: nn.Module, evaluator: Evaluator, layers: list[str],
                progress: Callable[[str], None] | None = None) -> dict[str, Measurement]:
    """Every layer but one quantized, for each layer: layer -> measurement."""
    results = {}
    for layer in layers:
        with ptq.layers_disabled(quantized, [layer]):
            results[layer] = evaluator.measure(quantized)
        if progress:
            progress(layer)
    return results


def only_pass(quantized: nn.Module, evaluator: Evaluator, layers: list[str],
              progress: Callable[[str], None] | None = None, everything: list[str] | None = None) -> dict[str, Measurement]:
    """One layer quantized, every other (of ``everything``, default ``layers``) in float, for each of
    ``layers``: layer -> measurement."""
    results = {}
    with ptq.layers_disabled(quantized, everything or layers):
        for layer in layers:
            ptq.enable_layers(quantized, [layer])
            try:
                results[layer] = evaluator.measure(quantized)
            finally:
                ptq.disable_layers(quantized, [layer])
            if progress:
                progress(layer)
    return results
