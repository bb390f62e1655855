"""``--calib-method auto``: choose the activation ranges by measuring them on held-out calibration images.

No fixed range rule suits every model (measured: on a small handwriting set ``entropy`` lost 1.1-1.7
points where ``max`` lost none; on ImageNet ResNet-50 the ranking is the opposite). So ``auto``:

1. splits the calibration images deterministically (``split_held_out``): every ``HOLD_OUT_EVERY``-th
   image (in calibration order) is held out, the others give the ranges. A held-out image is never
   used for a range, so the scores below are not fitted to the images they are measured on;
2. collects the activation statistics once (``ranges.TensorStats``) on the range images; every
   candidate of ``CANDIDATES`` (max, percentile 99.9/99.99/99.999, mse, entropy) is derived from that
   one collection;
3. scores each candidate on the held-out images with the INT8 simulator of the target's Q/DQ form
   (the caller's ``evaluate``: ONNX Runtime on the Q/DQ graph, or the ModelOpt fake-quant model) by
   top-1 agreement with the FP32 logits and by KL(FP32 softmax || INT8 softmax);
4. picks the best: higher agreement first, lower KL to break ties, ``CANDIDATES`` order after that;
5. tries a per-tensor mix (``_mix``): starting from the chosen candidate, for each of the
   ``MIX_TENSORS`` tensors whose candidate ranges disagree most (largest max/min amax ratio), it
   tries that tensor's tightest and widest candidate range and keeps a change when the score
   improves. The mix replaces the uniform choice only when it measurably wins: strictly higher
   agreement, or equal agreement and a KL at least ``MIX_MIN_KL_GAIN`` lower (relative).

Its cost is one statistics pass plus ``len(CANDIDATES) + 2 * MIX_TENSORS`` short simulator runs on
the held-out images (identical range tables are scored once).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import torch

from ..core.errors import UsageError
from .ranges import AUTO, RANGE_RULES

log = logging.getLogger(__name__)

# label -> (range rule, its parameters), from ``ranges.RANGE_RULES``; the order breaks exact ties.
CANDIDATES: dict[str, tuple[str, dict]] = {
    label: (method, params)
    for method, rule in sorted(RANGE_RULES.items(), key=lambda item: item[1].tie_rank)
    for label, params in rule.candidates.items()
}
HOLD_OUT_EVERY = 4  # image i is held out when i % 4 == 3: a quarter of the set
HISTOGRAM_METHOD = "entropy"  # what the collection is declared as: any histogram rule keeps the histogram
MIX_TENSORS = 3
MIX_MIN_KL_GAIN = 0.10
MIX = "per-tensor"
TOLERANCE = 1e-6  # two ranges closer than this (relative) are the same range


@dataclass
class HeldOutSplit:
    """The calibration images split in two: ``calibration`` batches give the ranges, ``held_out`` scores them."""

    calibration: list[torch.Tensor]
    held_out: torch.Tensor
    calibration_indices: list[int]
    held_out_indices: list[int]


def split_held_out(batches: Iterable[torch.Tensor], every: int = HOLD_OUT_EVERY) -> HeldOutSplit:
    """Every ``every``-th image (index ``every-1``, ``2*every-1``...) held out, the rest for the ranges.

    A ``UsageError`` when either part would be empty (fewer than ``every`` images).
    """
    kept, held, kept_index, held_index = [], [], [], []
    position = 0
    for batch in batches:
        batch = batch.detach().float().cpu()
        indices = torch.arange(position, position + len(batch))
        mask = (indices % every) == every - 1
        if (~mask).any():
            kept.append(batch[~mask])
            kept_index += indices[~mask].tolist()
        if mask.any():
            held.append(batch[mask])
            held_index += indices[mask].tolist()
        position += len(batch)
    if not held or not kept:
        raise UsageError(
            f"--calib-method auto holds out every {every}th calibration image to score the range methods; "
            f"it needs at least {every} images (got {position}); pass more or an explicit --calib-method"
        )
    return HeldOutSplit(kept, torch.cat(held), kept_index, held_index)


@dataclass(frozen=True)
class Score:
    """How close an INT8 simulation is to FP32 on the held-out images."""

    agreement: float  # share of images whose top-1 class matches FP32
    kl: float  # mean KL(softmax FP32 || softmax INT8), nats

    def beats(self, other: Score) -> bool:
        """Higher agreement wins; at equal agreement, lower KL."""
        if not math.isclose(self.agreement, other.agreement, abs_tol=1e-12):
            return self.agreement > other.agreement
        return self.kl < other.kl


def score(reference: torch.Tensor, logits: torch.Tensor) -> Score:
    """Top-1 agreement and mean KL divergence of ``logits`` from the FP32 ``reference`` logits."""
    reference, logits = reference.double(), logits.double()
    if not torch.isfinite(logits).all():
        return Score(0.0, math.inf)
    agreement = float((reference.argmax(1) == logits.argmax(1)).double().mean())
    log_p, log_q = torch.log_softmax(reference, 1), torch.log_softmax(logits, 1)
    kl = float((log_p.exp() * (log_p - log_q)).sum(1).mean())
    return Score(agreement, max(kl, 0.0))


@dataclass
class AutoChoice:
    """What ``choose`` measured and decided; ``manifest()`` is the bundle's ``calibration.auto``."""

    scores: dict[str, Score]
    chosen: str  # a CANDIDATES label, or MIX
    assignment: dict[str, str]  # tensor -> candidate label (all equal unless the mix won)
    held_out_images: int
    calibration_images: int
    mix: dict = field(default_factory=dict)
    seconds: float = 0.0

    def manifest(self) -> dict:
        candidates = []
        for label, value in self.scores.items():
            method, params = CANDIDATES[label]
            candidates.append({"name": label, "method": method, **params,
                               "agreement": round(value.agreement, 6), "kl": round(value.kl, 8)})
        return {
            "candidates": candidates,
            "chosen": self.chosen,
            "rule": "highest top-1 agreement with FP32 on the held-out images, then lowest KL",
            "held_out_images": self.held_out_images,
            "calibration_images": self.calibration_images,
            "held_out_rule": f"every {HOLD_OUT_EVERY}th calibration image",
            "per_tensor": self.mix,
            "seconds": round(self.seconds, 2),
        }

    def log_summary(self) -> None:
        """The candidates' scores and the choice, as compile prints them."""
        log.info(f"auto calibration: {len(self.scores)} candidates scored on {self.held_out_images} held-out images "
                 f"(ranges from the other {self.calibration_images})")
        for label, value in self.scores.items():
            mark = "  <- chosen" if label == self.chosen else ""
            log.info(f"  {label:<18} agreement {value.agreement:.4f}  KL {value.kl:.5f}{mark}")
        if self.mix.get("tried"):
            verdict = "kept" if self.chosen == MIX else "not kept"
            log.info(f"  per-tensor mix: {self.mix['tried']} trials, {len(self.mix['changes'])} tensors changed, agreement "
                     f"{self.mix['agreement']:.4f} KL {self.mix['kl']:.5f} ({verdict}){'  <- chosen' if self.chosen == MIX else ''}")
        log.info(f"auto calibration chose {self.chosen} in {self.seconds:.1f}s")


def _rank_key(scores: dict[str, Score], label: str) -> tuple:
    order = list(CANDIDATES).index(label)
    return (-round(scores[label].agreement, 12), scores[label].kl, order)


def _magnitude(value: Any) -> float:
    """A range's amax: a float amax, or max |bound| of a (lowest, highest) pair."""
    if isinstance(value, (tuple, list)):
        return max(abs(float(v)) for v in value)
    return abs(float(value))


def _same(a: Any, b: Any) -> bool:
    return math.isclose(_magnitude(a), _magnitude(b), rel_tol=TOLERANCE, abs_tol=1e-12) and (
        not isinstance(a, (tuple, list)) or all(math.isclose(float(x), float(y), rel_tol=TOLERANCE, abs_tol=1e-12) for x, y in zip(a, b))
    )


class _Scorer:
    """Evaluates assignments (tensor -> candidate label) once each: identical range tables share a score."""

    def __init__(self, tables: dict[str, dict[str, Any]], evaluate: Callable[[dict[str, Any]], torch.Tensor], reference: torch.Tensor):
        self.tables, self.evaluate, self.reference = tables, evaluate, reference
        self.cache: list[tuple[dict[str, Any], Score]] = []
        self.runs = 0

    def ranges(self, assignment: dict[str, str]) -> dict[str, Any]:
        return {tensor: self.tables[label][tensor] for tensor, label in assignment.items()}

    def __call__(self, assignment: dict[str, str]) -> Score:
        ranges = self.ranges(assignment)
        for seen, result in self.cache:
            if all(_same(ranges[name], seen[name]) for name in ranges):
                return result
        result = score(self.reference, self.evaluate(ranges))
        self.runs += 1
        self.cache.append((ranges, result))
        return result


def disagreement(tables: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Tensor -> log(widest / tightest candidate amax): how much the rules dispute its range."""
    result = {}
    for tensor in next(iter(tables.values())):
        amaxes = [_magnitude(table[tensor]) for table in tables.values()]
        low, high = min(amaxes), max(amaxes)
        result[tensor] = math.log(high / low) if low > 0 else (math.inf if high > 0 else 0.0)
    return result


def _mix(scorer: _Scorer, start: str, start_score: Score, tensors: list[str]) -> tuple[dict[str, str], Score, dict]:
    """Greedy per-tensor choice from the uniform ``start``: the ``MIX_TENSORS`` most disputed tensors,
    each tried at its tightest and widest candidate range; a change stays when the score improves."""
    tables = scorer.tables
    ranked = sorted(disagreement({label: {t: tables[label][t] for t in tensors} for label in tables}).items(),
                    key=lambda item: (-item[1], tensors.index(item[0])))
    assignment, current = {tensor: start for tensor in tensors}, start_score
    tried, changes = 0, {}
    for tensor, spread in ranked[:MIX_TENSORS]:
        if spread <= 0:
            break
        by_amax = sorted(tables, key=lambda label: (_magnitude(tables[label][tensor]), list(CANDIDATES).index(label)))
        for label in dict.fromkeys((by_amax[0], by_amax[-1])):
            if _same(tables[label][tensor], tables[assignment[tensor]][tensor]):
                continue
            trial = {**assignment, tensor: label}
            result = scorer(trial)
            tried += 1
            if result.beats(current):
                assignment, current = trial, result
                changes[tensor] = label
    info = {"tensors_considered": min(MIX_TENSORS, len(ranked)), "tried": tried, "changes": changes,
            "agreement": round(current.agreement, 6), "kl": round(current.kl, 8)}
    return assignment, current, info


def _measurably_better(mix: Score, uniform: Score) -> bool:
    if mix.agreement > uniform.agreement + 1e-12:
        return True
    return math.isclose(mix.agreement, uniform.agreement, abs_tol=1e-12) and mix.kl <= uniform.kl * (1 - MIX_MIN_KL_GAIN)


def choose(
    tables: dict[str, dict[str, Any]],
    evaluate: Callable[[dict[str, Any]], torch.Tensor],
    reference: torch.Tensor,
    split: HeldOutSplit,
    mix: bool = True,
) -> AutoChoice:
    """Score every candidate range table on the held-out images and choose (see the module docstring).

    ``tables``: candidate label -> tensor -> range (an amax float or a (lowest, highest) pair), all
    derived from one statistics collection. ``evaluate(ranges)``: the INT8 simulator's logits on
    ``split.held_out`` with those ranges. ``reference``: the FP32 logits on the same images.
    """
    started = time.time()
    scorer = _Scorer(tables, evaluate, reference)
    tensors = list(next(iter(tables.values())))
    scores = {label: scorer({tensor: label for tensor in tensors}) for label in tables}
    best = min(scores, key=lambda label: _rank_key(scores, label))
    choice = AutoChoice(scores, best, {tensor: best for tensor in tensors}, len(split.held_out_indices), len(split.calibration_indices))
    if mix and tensors:
        assignment, mixed, info = _mix(scorer, best, scores[best], tensors)
        info["kept"] = bool(info["changes"]) and _measurably_better(mixed, scores[best])
        choice.mix = info
        if info["kept"]:
            choice.chosen, choice.assignment = MIX, assignment
    choice.mix["simulator_runs"] = scorer.runs
    choice.seconds = time.time() - started
    return choice


def chosen_ranges(tables: dict[str, dict[str, Any]], choice: AutoChoice) -> dict[str, Any]:
    """Tensor -> the range ``choice`` assigned it."""
    return {tensor: tables[label][tensor] for tensor, label in choice.assignment.items()}


__all__ = [
    "AUTO",
    "AutoChoice",
    "CANDIDATES",
    "HOLD_OUT_EVERY",
    "HeldOutSplit",
    "Score",
    "choose",
    "chosen_ranges",
    "disagreement",
    "score",
    "split_held_out",
]
