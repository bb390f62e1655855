"""The one activation-range implementation (resnet_edge.quantize.ranges): the rules against reference
implementations, the mergeable histogram, and the same ranges on the ONNX Runtime and ModelOpt paths."""

import warnings
from collections import Counter

import numpy as np
import pytest
import torch
from torch import nn

from resnet_edge.quantize.ranges import (
    NUM_BINS,
    TensorStats,
    amax_entropy,
    amax_mse,
    amax_percentile,
    candidate_amaxes,
    compute_amax,
    compute_range,
)


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
    assert amax_entropy(hist, edges, unsigned) == pytest.approx(reference_entropy(hist, edges, unsigned))


def _sample_mse(values, amax, levels=255):
    step = amax / levels
    return float(np.mean((values - np.clip(np.round(values / step), 0, levels) * step) ** 2))


def test_percentile_matches_numpy_and_mse_minimises_the_real_error():
    rng = np.random.default_rng(0)
    values = np.abs(rng.laplace(0, 1, 200_000))
    hist, edges = np.histogram(values, bins=NUM_BINS, range=(0, values.max()))
    assert amax_percentile(hist, edges) == pytest.approx(np.percentile(values, 99.99), rel=0.02, abs=edges[1])
    chosen = amax_mse(hist, edges, unsigned=True)
    assert chosen < values.max()
    best = min(_sample_mse(values, amax) for amax in edges[128::16])
    assert _sample_mse(values, chosen) <= 1.05 * best


def test_histogram_growth_merges_bins_exactly():
    rng = np.random.default_rng(1)
    small, large = rng.uniform(0, 1, 10_000).astype(np.float32), rng.uniform(0, 5, 10_000).astype(np.float32)
    stats = TensorStats(histogram=True)
    stats.update(small)
    stats.update(large)
    assert stats.hist.sum() == 20_000
    assert stats.width * NUM_BINS >= large.max()
    both = np.concatenate([small, large])
    direct, _ = np.histogram(both, bins=NUM_BINS, range=(0, stats.width * NUM_BINS))
    assert np.abs(direct - stats.hist).sum() <= 4  # float rounding at bin edges only


def test_ranges_asymmetric_keep_relu_outputs_non_negative_and_symmetric_mirror():
    stats = TensorStats(histogram=True)
    stats.update(np.linspace(0, 3, 1000, dtype=np.float32))
    low, high = compute_range(stats, "max", symmetric=False)
    assert (low, high) == (0.0, pytest.approx(3.0))
    low, high = compute_range(stats, "percentile", symmetric=True)
    assert low == -high and 2.9 < high <= 3.0
    signed = TensorStats(histogram=False)
    signed.update(np.array([-1.0, 2.0], dtype=np.float32))
    assert compute_range(signed, "max", symmetric=False) == (-1.0, 2.0)
    assert compute_range(signed, "max", symmetric=True) == (-2.0, 2.0)


def test_merge_of_two_collections_equals_one_collection():
    rng = np.random.default_rng(2)
    first, second = rng.normal(0, 1, 50_000).astype(np.float32), rng.normal(0, 3, 50_000).astype(np.float32)
    together = TensorStats()
    together.update(first)
    together.update(second)
    split_a, split_b = TensorStats(), TensorStats()
    split_a.update(first)
    split_b.update(first)  # the same first batch sets the same grid; then keep only the second batch's counts
    split_b.hist[:] = 0
    split_b.update(second)
    split_a.merge(split_b)
    assert (split_a.min, split_a.max) == (together.min, together.max)
    np.testing.assert_array_equal(split_a.hist, together.hist)
    # Unrelated grids: mass-preserving, and the rules barely move.
    other = TensorStats()
    other.update(second)
    merged = TensorStats()
    merged.update(first)
    merged.merge(other)
    assert merged.hist.sum() == pytest.approx(together.hist.sum())
    for method in ("percentile", "entropy", "mse"):
        assert compute_amax(merged, method) == pytest.approx(compute_amax(together, method), rel=0.03)


def test_one_collection_gives_every_candidate_range():
    rng = np.random.default_rng(3)
    stats = TensorStats()
    stats.update(rng.laplace(0, 1, 100_000).astype(np.float32))
    candidates = candidate_amaxes(
        stats,
        {
            "max": ("max", {}),
            "p99.9": ("percentile", {"percentile": 99.9}),
            "p99.99": ("percentile", {"percentile": 99.99}),
            "p99.999": ("percentile", {"percentile": 99.999}),
            "mse": ("mse", {}),
            "entropy": ("entropy", {}),
        },
    )
    assert candidates["p99.9"] <= candidates["p99.99"] <= candidates["p99.999"] <= candidates["max"] == stats.observed_amax
    assert 0 < candidates["entropy"] <= candidates["max"] and 0 < candidates["mse"] <= candidates["max"]


def test_torch_and_numpy_inputs_give_the_same_statistics():
    values = torch.randn(4, 8, 16, 16)
    from_torch, from_numpy = TensorStats(), TensorStats()
    from_torch.update(values)
    from_numpy.update(values.numpy())
    assert (from_torch.min, from_torch.max, from_torch.width) == (from_numpy.min, from_numpy.max, from_numpy.width)
    np.testing.assert_array_equal(from_torch.hist, from_numpy.hist)


class _Probe(nn.Module):
    """Three convolutions whose inputs both runtimes compute exactly: x, relu(x), maxpool(x)."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.c = (nn.Conv2d(3, 4, 3, padding=1) for _ in range(3))
        self.pool = nn.MaxPool2d(2)

    def forward(self, x):
        return self.a(x).mean((2, 3)) + self.b(torch.relu(x)).mean((2, 3)) + self.c(self.pool(x)).mean((2, 3))


def _conv_inputs(onnx_path) -> dict[str, str]:
    import onnx

    model = onnx.load(str(onnx_path))
    return {node.input[1][: -len(".weight")]: node.input[0] for node in model.graph.node if node.op_type == "Conv"}


@pytest.mark.parametrize("method", ["max", "percentile", "entropy", "mse"])
def test_the_same_tensors_get_the_same_ranges_on_both_paths(tmp_path, method, probe_paths):
    ptq = pytest.importorskip("resnet_edge.quantize.modelopt_ptq")
    pytest.importorskip("modelopt.torch.quantization", reason="nvidia-modelopt is not installed")
    from resnet_edge.quantize.onnx_collect import collect_ranges

    model, onnx_path, batches = probe_paths
    # The TensorRT placement's ranges are symmetric and signed, as ModelOpt's INT8 quantizers are.
    onnx_ranges = collect_ranges(onnx_path, batches, method, symmetric=True, work_dir=tmp_path)
    quantized = ptq.calibrate(model, batches, ptq.PTQConfig(method=method, quantize_residual=False))
    for layer, tensor in _conv_inputs(onnx_path).items():
        low, high = onnx_ranges[tensor]
        amax = float(quantized.get_submodule(layer).input_quantizer.amax)
        assert low == -high and high > 0
        assert amax == pytest.approx(high, rel=1e-6), f"{method}: {layer}"


@pytest.fixture(scope="module")
def probe_paths(tmp_path_factory):
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    from helpers.calibration import shapes_images

    torch.manual_seed(0)
    model = _Probe().eval()
    path = tmp_path_factory.mktemp("probe") / "probe.onnx"
    batches = list(shapes_images(32).split(16))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter: fast, and enough for three convs
        torch.onnx.export(model, (batches[0],), str(path), input_names=["input"], dynamic_axes={"input": {0: "batch"}}, dynamo=False)
    return model, path, batches
