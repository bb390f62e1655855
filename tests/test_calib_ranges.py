"""Activation-range methods of the ONNX INT8 path against reference implementations."""

from collections import Counter

import numpy as np
import pytest

from resnet_edge.quantize.ort_calibrate import _amax_entropy, _amax_mse, _amax_percentile, _TensorStats, compute_range, NUM_BINS


def _kl(p, q):
    p, q = p / p.sum(), q / q.sum()
    mask = p > 0
    if np.any(q[mask] == 0):
        return np.inf
    return float(np.sum(p[mask] * np.log(p[mask] / q[mask])))


def reference_entropy(hist, edges, unsigned, num_bits=8, start_bin=128):
    """pytorch-quantization's ``_compute_amax_entropy`` (TensorRT's algorithm), loop for loop."""
    bins = hist.astype(np.float64).copy()
    bins[0] = bins[1]
    levels = 1 << (num_bits - 1 + int(unsigned))
    divergences = []
    for i in range(start_bin, len(bins) + 1):
        space = np.linspace(0, i, num=levels + 1)
        digitized = np.digitize(range(i), space) - 1
        digitized[bins[:i] == 0] = -1
        counts = np.zeros(levels)
        for index, d in enumerate(digitized):
            if d != -1:
                counts[d] += bins[index]
        for key, value in Counter(digitized).items():
            if key != -1:
                counts[key] /= value
        density = np.array([counts[d] if d != -1 else 0.0 for d in digitized])
        reference = bins[:i].copy()
        reference[-1] += bins[i:].sum()
        divergences.append(_kl(reference, density))
    divergences = np.array(divergences)
    best = len(divergences) - 1 - np.argmin(divergences[::-1])
    return edges[best + start_bin]


@pytest.mark.parametrize("unsigned", [False, True])
@pytest.mark.parametrize("kind", ["relu-normal", "heavy-tail"])
def test_entropy_matches_the_reference_algorithm(kind, unsigned):
    rng = np.random.default_rng(7)
    values = np.maximum(rng.normal(0.5, 1, 100_000), 0) if kind == "relu-normal" else np.abs(rng.standard_t(3, 100_000))
    hist, edges = np.histogram(values, bins=384, range=(0, values.max()))
    assert _amax_entropy(hist, edges, unsigned) == pytest.approx(reference_entropy(hist, edges, unsigned))


def _sample_mse(values, amax, levels=255):
    step = amax / levels
    return float(np.mean((values - np.clip(np.round(values / step), 0, levels) * step) ** 2))


def test_percentile_matches_numpy_and_mse_minimises_the_real_error():
    rng = np.random.default_rng(0)
    values = np.abs(rng.laplace(0, 1, 200_000))
    hist, edges = np.histogram(values, bins=NUM_BINS, range=(0, values.max()))
    assert _amax_percentile(hist, edges) == pytest.approx(np.percentile(values, 99.99), rel=0.02, abs=edges[1])
    chosen = _amax_mse(hist, edges, unsigned=True)
    assert chosen < values.max()
    best = min(_sample_mse(values, amax) for amax in edges[128::16])
    assert _sample_mse(values, chosen) <= 1.05 * best


def test_histogram_growth_merges_bins_exactly():
    rng = np.random.default_rng(1)
    small, large = rng.uniform(0, 1, 10_000).astype(np.float32), rng.uniform(0, 5, 10_000).astype(np.float32)
    stats = _TensorStats(histogram=True)
    stats.update(small)
    stats.update(large)
    assert stats.hist.sum() == 20_000
    assert stats.width * NUM_BINS >= large.max()
    both = np.concatenate([small, large])
    direct, _ = np.histogram(both, bins=NUM_BINS, range=(0, stats.width * NUM_BINS))
    assert np.abs(direct - stats.hist).sum() <= 4  # float rounding at bin edges only


def test_ranges_asymmetric_keep_relu_outputs_non_negative_and_symmetric_mirror():
    stats = _TensorStats(histogram=True)
    stats.update(np.linspace(0, 3, 1000, dtype=np.float32))
    low, high = compute_range(stats, "max", symmetric=False)
    assert (low, high) == (0.0, pytest.approx(3.0))
    low, high = compute_range(stats, "percentile", symmetric=True)
    assert low == -high and 2.9 < high <= 3.0
    signed = _TensorStats(histogram=False)
    signed.update(np.array([-1.0, 2.0], dtype=np.float32))
    assert compute_range(signed, "max", symmetric=False) == (-1.0, 2.0)
    assert compute_range(signed, "max", symmetric=True) == (-2.0, 2.0)
