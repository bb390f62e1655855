"""Activation ranges for INT8: the one implementation both quantization paths use.

Statistics are collected once per tensor (``TensorStats``: running min/max and a mergeable
histogram of |x|) and every range rule reads them (``compute_amax``):

``max``
    the largest |x| seen.
``percentile``
    the ``percentile``-th percentile of |x| (99.99 by default), read off the histogram.
``entropy``
    TensorRT's entropy calibration (pytorch-quantization's ``_compute_amax_entropy``): the clip
    point minimising KL(P || Q) between the clipped |x| histogram and its quantization. Every bin
    from ``START_BIN`` on is a candidate (no stride): the closed form below costs milliseconds.
``mse``
    the clip point minimising the expected squared quantization error over the histogram.

The ONNX Q/DQ path (``onnx_collect`` / ``ort_calibrate``) and the ModelOpt path (``modelopt_ptq``,
through ``RangeCalibrator``) both feed ``TensorStats`` and call ``compute_amax``, so the same tensor
gets the same range on both. Because a ``TensorStats`` keeps the whole histogram, any number of
rules and parameters can be evaluated on one collection (e.g. ``candidate_amaxes``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ..core.errors import CheckFailed, UsageError

NUM_BINS = 2048  # histogram resolution (TensorRT's entropy calibrator uses 2048 bins)
START_BIN = 128  # smallest amax candidate, in bins (pytorch-quantization's default)
PERCENTILE = 99.99
HISTOGRAM_SAMPLES = 1 << 19  # values per tensor and update that go into its histogram (min/max see all)


class TensorStats:
    """Running min/max and (with ``histogram``) a histogram of |x| over ``NUM_BINS`` bins from 0.

    The first update sets the bin width to its |x| maximum / ``NUM_BINS``; when a larger value
    arrives the width grows by an integer factor and old bins merge exactly. ``update`` takes numpy
    arrays and torch tensors alike (a CUDA tensor is reduced and subsampled on its device; only the
    subsample travels): equal values give equal statistics whichever path they come from.
    """

    def __init__(self, histogram: bool = True) -> None:
        self.min = float("inf")
        self.max = float("-inf")
        self.histogram = histogram
        self.hist: np.ndarray | None = None
        self.width = 0.0

    @property
    def empty(self) -> bool:
        """No value seen yet."""
        return self.min == float("inf")

    @property
    def unsigned(self) -> bool:
        """Every value seen was >= 0 (e.g. a ReLU output)."""
        return self.min >= 0

    @property
    def observed_amax(self) -> float:
        """The largest |x| seen (the ``max`` rule)."""
        return 0.0 if self.empty else max(abs(self.min), abs(self.max))

    @property
    def edges(self) -> np.ndarray:
        """The ``NUM_BINS + 1`` bin edges of ``hist``."""
        return np.arange(NUM_BINS + 1, dtype=np.float64) * self.width

    def update(self, values: np.ndarray | torch.Tensor) -> None:
        """Add a tensor's values. A ``CheckFailed`` for NaN or infinite values."""
        low, high, sample = _reduce(values)
        if sample is None:
            return
        if not (np.isfinite(low) and np.isfinite(high)):
            raise CheckFailed("the FP32 model produced NaN or infinite activations on a calibration image; check the weights")
        self.min, self.max = min(self.min, low), max(self.max, high)
        if not self.histogram:
            return
        self._grow(max(abs(low), abs(high)))
        magnitude = np.abs(sample)
        index = np.minimum((magnitude * np.float32(1.0 / self.width)).astype(np.int64), NUM_BINS - 1)
        self.hist += np.bincount(index, minlength=NUM_BINS)

    def merge(self, other: TensorStats) -> None:
        """Add the statistics of ``other`` (e.g. collected on another process or data shard).

        Exact when one bin width is an integer multiple of the other (as for two collections that
        started from the same first batch); otherwise each of ``other``'s bins is spread over the
        bins it overlaps, in proportion to the overlap.
        """
        if other.empty:
            return
        self.min, self.max = min(self.min, other.min), max(self.max, other.max)
        if not self.histogram:
            return
        if other.hist is None:
            raise ValueError("cannot merge statistics without a histogram into statistics with one")
        self._grow(other.width * NUM_BINS)
        self.hist += _rebin(other.hist, other.width, self.width)

    def _grow(self, amax: float) -> None:
        if self.hist is None:
            self.width = (amax / NUM_BINS) if amax > 0 else 1e-12
            self.hist = np.zeros(NUM_BINS, dtype=np.float64)
        elif amax > self.width * NUM_BINS:
            factor = int(np.ceil(amax / (self.width * NUM_BINS)))
            merged = np.zeros(NUM_BINS * factor, dtype=np.float64)
            merged[:NUM_BINS] = self.hist
            self.hist = merged.reshape(NUM_BINS, factor).sum(axis=1)
            self.width *= factor


def _reduce(values: np.ndarray | torch.Tensor) -> tuple[float, float, np.ndarray | None]:
    """(min, max, an even subsample of at most ``HISTOGRAM_SAMPLES`` values as float32 numpy).

    numpy on the CPU, single-threaded: these are many small reductions, where a thread pool only
    adds overhead. Torch tensors (a ModelOpt quantizer's input, possibly on a GPU) are reduced where
    they are; the subsample is taken in the same flattened order, so equal values give equal samples.
    """
    if isinstance(values, torch.Tensor):
        flat = values.detach().reshape(-1)
        if flat.numel() == 0:
            return 0.0, 0.0, None
        if flat.device.type == "cpu":
            return _reduce(flat.float().numpy())
        flat = flat.float()
        low, high = torch.aminmax(flat)
        stride = -(-flat.numel() // HISTOGRAM_SAMPLES)
        return float(low), float(high), flat[::stride].cpu().numpy()
    flat = np.asarray(values, dtype=np.float32).reshape(-1)
    if flat.size == 0:
        return 0.0, 0.0, None
    stride = -(-flat.size // HISTOGRAM_SAMPLES)
    return float(flat.min()), float(flat.max()), flat[::stride]


def _rebin(hist: np.ndarray, width: float, new_width: float) -> np.ndarray:
    """``hist`` (bins of ``width`` from 0) on ``NUM_BINS`` bins of ``new_width >= width``."""
    ratio = new_width / width
    if abs(ratio - round(ratio)) < 1e-9:
        factor = int(round(ratio))
        padded = np.zeros(NUM_BINS * factor, dtype=np.float64)
        padded[: len(hist)] = hist
        return padded.reshape(NUM_BINS, factor).sum(axis=1)
    # Overlap-proportional: the cumulative count, linear inside each old bin, read at the new edges.
    cumulative = np.concatenate([[0.0], np.cumsum(hist)])
    positions = np.minimum(np.arange(NUM_BINS + 1) * ratio, len(hist))
    return np.diff(np.interp(positions, np.arange(len(hist) + 1), cumulative))


# ------------------------------------------------------------------------------------------- rules


def amax_percentile(hist: np.ndarray, edges: np.ndarray, percentile: float = PERCENTILE) -> float:
    """The upper edge of the bin where the |x| histogram's cumulative share reaches ``percentile``."""
    total = hist.sum()
    if total == 0:
        return 0.0
    cdf = np.cumsum(hist) / total
    index = int(np.searchsorted(cdf, percentile / 100.0))
    return float(edges[min(index + 1, len(edges) - 1)])


def amax_entropy(hist: np.ndarray, edges: np.ndarray, unsigned: bool, num_bits: int = 8, start_bin: int = START_BIN) -> float:
    """TensorRT's entropy calibration (pytorch-quantization ``_compute_amax_entropy``): for every
    candidate clip bin ``i``, KL(P || Q) where P is the |x| histogram clipped at ``i`` (outliers added to
    the last kept bin) and Q its quantization to ``2**(bits-1)`` levels (``2**bits`` when unsigned), the
    mass of each level spread evenly over its non-empty bins; the last argmin wins.

    Evaluated in closed form with prefix sums, O(candidates x levels) instead of the reference's
    O(candidates x bins) loop; ``tests/test_calib_ranges.py`` checks it against the reference.
    """
    bins = hist.astype(np.float64).copy()
    if bins.size > 1:
        bins[0] = bins[1]  # as TensorRT: the zero bin is dominated by ReLU zeros
    total = float(bins.sum())
    if total == 0:
        return 0.0
    levels = 1 << (num_bits - 1 + int(unsigned))
    prefix_sum = np.concatenate([[0.0], np.cumsum(bins)])  # S(a) = sum(bins[:a])
    prefix_nonzero = np.concatenate([[0.0], np.cumsum(bins > 0)])
    with np.errstate(divide="ignore", invalid="ignore"):
        blogb = np.where(bins > 0, bins * np.log(np.where(bins > 0, bins, 1.0)), 0.0)
    prefix_blogb = np.concatenate([[0.0], np.cumsum(blogb)])
    candidates = np.arange(min(start_bin, bins.size), bins.size + 1)  # i = number of bins kept
    rows = np.arange(len(candidates))
    # bin j is in level floor(j * levels / i): level k spans [ceil(k i / levels), ceil((k+1) i / levels))
    bounds = (np.arange(levels + 1)[None, :] * candidates[:, None] + levels - 1) // levels  # [C, levels + 1]
    group_sum = prefix_sum[bounds[:, 1:]] - prefix_sum[bounds[:, :-1]]
    group_nonzero = prefix_nonzero[bounds[:, 1:]] - prefix_nonzero[bounds[:, :-1]]
    kept = prefix_sum[candidates]  # sum of Q before normalisation
    with np.errstate(divide="ignore", invalid="ignore"):
        log_q = np.log(np.maximum(group_sum / np.maximum(group_nonzero, 1), 1e-300)) - np.log(np.maximum(kept, 1e-300))[:, None]
        last = candidates - 1
        last_bin = bins[last]
        last_level = (last * levels) // candidates
        # sum over j < i-1 of p_j (log p_j - log q_j), with p_j = b_j / T
        body_sum = group_sum.copy()
        body_sum[rows, last_level] -= last_bin
        cross = np.where(body_sum > 0, body_sum * log_q, 0.0).sum(axis=1)
        body = (prefix_blogb[last] - prefix_sum[last] * np.log(total) - cross) / total
        # the last kept bin carries the outliers
        p_last = (last_bin + (total - kept)) / total
        last_term = np.where(p_last > 0, p_last * (np.log(np.maximum(p_last, 1e-300)) - log_q[rows, last_level]), 0.0)
    divergence = np.where((p_last > 0) & (last_bin <= 0), np.inf, body + last_term)
    best = len(divergence) - 1 - int(np.argmin(divergence[::-1]))
    return float(edges[int(candidates[best])])


def amax_mse(hist: np.ndarray, edges: np.ndarray, unsigned: bool, num_bits: int = 8, start_bin: int = START_BIN) -> float:
    """The amax that minimises the expected squared error of quantizing the |x| histogram's bin centres
    (pytorch-quantization ``_compute_amax_mse``): a coarse pass over every 8th candidate, then every
    candidate around the best one."""
    counts = hist.astype(np.float64)
    if counts.sum() == 0:
        return 0.0
    centres = (edges[:-1] + edges[1:]) / 2
    levels = (1 << num_bits) - 1 if unsigned else (1 << (num_bits - 1)) - 1
    first = max(1, min(start_bin, len(edges) - 1))

    def errors(indices: np.ndarray) -> np.ndarray:
        step = (edges[indices] / levels)[:, None]
        quantized = np.minimum(np.round(centres[None, :] / step), levels) * step
        return ((centres[None, :] - quantized) ** 2 * counts[None, :]).sum(axis=1)

    coarse = np.arange(first, len(edges), 8)
    best = int(coarse[np.argmin(errors(coarse))])
    fine = np.arange(max(first, best - 8), min(len(edges), best + 9))
    return float(edges[int(fine[np.argmin(errors(fine))])])


@dataclass(frozen=True)
class RangeRule:
    """One range rule: ``amax(hist, edges, unsigned, num_bits, start_bin, percentile)`` picks the clip
    value from the |x| histogram (None: the observed max, no histogram needed); ``candidates`` are the
    variants ``--calib-method auto`` scores (label -> parameters), ranked among all candidates on exact
    ties by ``tie_rank`` (lower first)."""

    amax: Callable[[np.ndarray, np.ndarray, bool, int, int, float], float] | None
    candidates: dict[str, dict]
    tie_rank: int


# The range rules, in the order ``--calib-method`` lists them: a new rule is one entry here.
RANGE_RULES: dict[str, RangeRule] = {
    "entropy": RangeRule(lambda hist, edges, unsigned, bits, start, _p: amax_entropy(hist, edges, unsigned, bits, start),
                         {"entropy": {}}, tie_rank=3),
    "max": RangeRule(None, {"max": {}}, tie_rank=0),
    "percentile": RangeRule(lambda hist, edges, _unsigned, _bits, _start, percentile: amax_percentile(hist, edges, percentile),
                            {f"percentile-{p}": {"percentile": p} for p in (99.9, 99.99, 99.999)}, tie_rank=1),
    "mse": RangeRule(lambda hist, edges, unsigned, bits, start, _p: amax_mse(hist, edges, unsigned, bits, start),
                     {"mse": {}}, tie_rank=2),
}
AUTO = "auto"  # not a rule: scores every rule's candidates on held-out images (quantize/auto.py)
RANGE_METHODS = tuple(RANGE_RULES)
CALIBRATION_METHODS = (AUTO, *RANGE_RULES)
HISTOGRAM_METHODS = tuple(method for method, rule in RANGE_RULES.items() if rule.amax is not None)


def check_method(method: str) -> None:
    """A ``UsageError`` naming the choices unless ``method`` is one of the range rules (``RANGE_METHODS``).

    ``auto`` is a calibration method but not a range rule: it chooses among them (``quantize.auto``).
    """
    if method not in RANGE_METHODS:
        choices = CALIBRATION_METHODS if method not in CALIBRATION_METHODS else RANGE_METHODS
        raise UsageError(f"unknown calibration method {method!r}; choose one of: {', '.join(choices)}")


def compute_amax(
    stats: TensorStats,
    method: str,
    *,
    unsigned: bool = False,
    num_bits: int = 8,
    percentile: float = PERCENTILE,
    start_bin: int = START_BIN,
) -> float:
    """The clip value |x| <= amax that ``method`` chooses for one tensor, never above the observed max.

    ``unsigned``: the tensor is quantized to ``2**num_bits`` non-negative levels (an asymmetric
    range over a ReLU output) rather than the ``2**(num_bits-1)`` of a symmetric signed range;
    entropy and mse count levels accordingly. 0.0 for a tensor that saw no values.
    """
    check_method(method)
    if stats.empty:
        return 0.0
    observed = stats.observed_amax
    rule = RANGE_RULES[method]
    if rule.amax is None:
        return observed
    if stats.hist is None:
        raise ValueError(f"the {method} rule needs statistics collected with histogram=True")
    amax = rule.amax(stats.hist, stats.edges, unsigned, num_bits, start_bin, percentile)
    return min(max(amax, 0.0), observed)


def compute_range(stats: TensorStats, method: str, symmetric: bool, **params) -> tuple[float, float]:
    """(lowest, highest) for one tensor. Symmetric: (-amax, amax) with signed levels. Asymmetric: the
    observed range clipped to [-amax, amax] (a ReLU output stays [0, amax], with unsigned levels).
    ``params`` go to ``compute_amax`` (``percentile``, ``num_bits``, ``start_bin``)."""
    if stats.empty:
        return 0.0, 0.0
    amax = compute_amax(stats, method, unsigned=stats.unsigned and not symmetric, **params)
    if symmetric:
        return -amax, amax
    return max(stats.min, -amax), min(stats.max, amax)


def candidate_amaxes(stats: TensorStats, candidates: dict[str, tuple[str, dict]], unsigned: bool = False) -> dict[str, float]:
    """Several rules on one collection: ``{label: (method, params)}`` -> ``{label: amax}``.

    E.g. ``{"p99.9": ("percentile", {"percentile": 99.9}), "entropy": ("entropy", {})}``.
    """
    return {label: compute_amax(stats, method, unsigned=unsigned, **params) for label, (method, params) in candidates.items()}


def needs_histogram(method: str) -> bool:
    """Whether ``method`` reads the histogram (``max`` needs only min/max)."""
    check_method(method)
    return method in HISTOGRAM_METHODS


__all__ = [
    "AUTO",
    "CALIBRATION_METHODS",
    "HISTOGRAM_SAMPLES",
    "NUM_BINS",
    "PERCENTILE",
    "RANGE_METHODS",
    "RANGE_RULES",
    "RangeRule",
    "START_BIN",
    "TensorStats",
    "amax_entropy",
    "amax_mse",
    "amax_percentile",
    "candidate_amaxes",
    "check_method",
    "compute_amax",
    "compute_range",
    "needs_histogram",
]
