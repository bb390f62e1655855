"""INT8 for ONNX: calibrate activation ranges, then insert Q/DQ with onnxruntime.quantization.

Two Q/DQ placements, because what TensorRT wants is not what is fastest in ONNX Runtime on a CPU:

``onnxruntime-cpu`` (``--target cpu``)
    uint8 asymmetric activations, int8 symmetric per-channel weights (U8S8, ORT's choice for x86 with
    VNNI and for ARM), int32 biases, every supported op quantized (Conv, Add, MaxPool, GlobalAveragePool)
    and ReLU folded into the preceding Q range: ORT fuses each DQ->op->Q group into QLinearConv /
    QLinearAdd / QLinearGlobalAveragePool so the whole network runs in integer kernels.
``tensorrt`` (``--target datacenter|jetson-*``)
    int8 *symmetric* activations (zero point 0, TensorRT only supports that) and per-channel symmetric
    weights; Q/DQ on the inputs of every convolution and on both inputs of each residual Add (so
    TensorRT can fuse conv + add + relu into one INT8 kernel, NVIDIA/TensorRT#1992), none on conv
    outputs (TensorRT fuses the output scale into the next layer), float biases.

Both keep the classifier (``fc``, a Gemm) in float: it is < 0.1 % of the multiply-adds and the layer
most sensitive to rounding.

Calibration ranges are computed here rather than with ORT's calibrators so that the four methods
match TensorRT / pytorch-quantization semantics (``max``; ``percentile`` 99.99 of |x|; ``entropy``, the
KL-divergence search of TensorRT's entropy calibrator over a 2048-bin |x| histogram and 128 levels;
``mse``, the amax minimising the mean squared quantization error over that histogram) and so that
memory stays flat: tensors are reduced to min/max and a fixed-size histogram batch by batch. The
ranges reach ``quantize_static`` through its ``calibration_cache_path``; they are also written to the
bundle (``calibration-cache.json``): the scales every Q/DQ node gets are exactly these.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch

from ..core.errors import CheckFailed, UsageError

NUM_BINS = 2048  # histogram resolution (TensorRT's entropy calibrator uses 2048 bins)
START_BIN = 128  # smallest amax candidate, in bins (pytorch-quantization's default)
PERCENTILE = 99.99
HISTOGRAM_SAMPLES = 1 << 19  # values per tensor and calibration run that go into its histogram (min/max see all)
PLACEMENTS = {
    "onnxruntime-cpu": "uint8 asymmetric activations and per-channel int8 weights on every supported op, "
    "so ONNX Runtime fuses them into integer kernels (QLinearConv, QLinearAdd): the fastest form on a CPU",
    "tensorrt": "symmetric int8 activations on convolution and residual-add inputs only, per-channel symmetric "
    "weights and float biases, as TensorRT's explicit-quantization guide asks; it also runs on ONNX Runtime, more slowly",
}


def placement_for_target(target: str) -> str:
    """``onnxruntime-cpu`` for ``--target cpu``, ``tensorrt`` for a GPU target."""
    return "onnxruntime-cpu" if target == "cpu" else "tensorrt"


# ------------------------------------------------------------------------------------ range collection


class _TensorStats:
    """Running min/max and (optionally) a histogram of |x| over ``NUM_BINS`` bins starting at 0. When a
    larger value arrives the bin width grows by an integer factor and old bins merge exactly.

    numpy, single-threaded: these are many small reductions, where a thread pool only adds overhead.
    """

    def __init__(self, histogram: bool) -> None:
        self.min = float("inf")
        self.max = float("-inf")
        self.histogram = histogram
        self.hist: np.ndarray | None = None
        self.width = 0.0

    def update(self, array: np.ndarray) -> None:
        values = np.asarray(array, dtype=np.float32).reshape(-1)
        if values.size == 0:
            return
        low, high = float(values.min()), float(values.max())
        if not (np.isfinite(low) and np.isfinite(high)):
            raise CheckFailed("the FP32 model produced NaN or infinite activations on a calibration image; check the weights")
        self.min, self.max = min(self.min, low), max(self.max, high)
        if not self.histogram:
            return
        amax = max(abs(low), abs(high))
        stride = -(-values.size // HISTOGRAM_SAMPLES)
        magnitude = np.abs(values[::stride])  # an even subsample: plenty for 2048 bins, and bounded time
        if self.hist is None:
            self.width = (amax / NUM_BINS) if amax > 0 else 1e-12
            self.hist = np.zeros(NUM_BINS, dtype=np.float64)
        elif amax > self.width * NUM_BINS:
            factor = int(np.ceil(amax / (self.width * NUM_BINS)))
            merged = np.zeros(NUM_BINS * factor, dtype=np.float64)
            merged[:NUM_BINS] = self.hist
            self.hist = merged.reshape(NUM_BINS, factor).sum(axis=1)
            self.width *= factor
        index = np.minimum((magnitude * np.float32(1.0 / self.width)).astype(np.int64), NUM_BINS - 1)
        self.hist += np.bincount(index, minlength=NUM_BINS)

    @property
    def unsigned(self) -> bool:
        return self.min >= 0

    @property
    def edges(self) -> np.ndarray:
        return np.arange(NUM_BINS + 1, dtype=np.float64) * self.width


def _amax_percentile(hist: np.ndarray, edges: np.ndarray, percentile: float = PERCENTILE) -> float:
    total = hist.sum()
    if total == 0:
        return 0.0
    cdf = np.cumsum(hist) / total
    index = int(np.searchsorted(cdf, percentile / 100.0))
    return float(edges[min(index + 1, len(edges) - 1)])


def _amax_entropy(hist: np.ndarray, edges: np.ndarray, unsigned: bool, num_bits: int = 8, start_bin: int = START_BIN) -> float:
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
    n = bins.size
    prefix_sum = np.concatenate([[0.0], np.cumsum(bins)])  # S(a) = sum(bins[:a])
    prefix_nonzero = np.concatenate([[0.0], np.cumsum(bins > 0)])
    with np.errstate(divide="ignore", invalid="ignore"):
        blogb = np.where(bins > 0, bins * np.log(np.where(bins > 0, bins, 1.0)), 0.0)
    prefix_blogb = np.concatenate([[0.0], np.cumsum(blogb)])
    candidates = np.arange(min(start_bin, n), n + 1)  # i = number of bins kept
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


def _amax_mse(hist: np.ndarray, edges: np.ndarray, unsigned: bool, num_bits: int = 8, start_bin: int = START_BIN) -> float:
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


def compute_range(stats: _TensorStats, method: str, symmetric: bool) -> tuple[float, float]:
    """(lowest, highest) for one tensor. Symmetric: (-amax, amax). Asymmetric: the observed range
    clipped to [-amax, amax] (a ReLU output stays [0, amax])."""
    if stats.min == float("inf"):
        return 0.0, 0.0
    observed = max(abs(stats.min), abs(stats.max))
    if method == "max":
        amax = observed
    else:
        hist, edges = stats.hist, stats.edges
        unsigned = stats.unsigned and not symmetric
        if method == "percentile":
            amax = _amax_percentile(hist, edges)
        elif method == "entropy":
            amax = _amax_entropy(hist, edges, unsigned)
        elif method == "mse":
            amax = _amax_mse(hist, edges, unsigned)
        else:
            raise UsageError(f"unknown calibration method {method!r}; choose entropy, max, percentile or mse")
        amax = min(max(amax, 0.0), observed)
    if symmetric:
        return -amax, amax
    return max(stats.min, -amax), min(stats.max, amax)


def _float_tensors(model) -> list[str]:
    """Names of every float tensor a node produces, plus the graph inputs (not initializers)."""
    import onnx

    float_types = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16}
    types = {}
    for info in [*model.graph.value_info, *model.graph.output, *model.graph.input]:
        if info.type.HasField("tensor_type"):
            types[info.name] = info.type.tensor_type.elem_type
    initializers = {init.name for init in model.graph.initializer}
    names = [info.name for info in model.graph.input if info.name not in initializers]
    for node in model.graph.node:
        for output in node.output:
            if output and output not in initializers and types.get(output, onnx.TensorProto.FLOAT) in float_types:
                names.append(output)
    return list(dict.fromkeys(names))


def _chunk_size(shape) -> int:
    """Images per calibration run: every activation of a run is held at once, so ~64 for 32x32 inputs
    and 1 for 224x224 (a ResNet-50 image has ~20M activation values)."""
    area = int(shape[-1]) * int(shape[-2]) if len(shape) >= 2 else 1
    return max(1, min(64, (1 << 16) // max(area, 1)))


def _rechunk(batches: Iterable[torch.Tensor], static_batch: int | None) -> Iterable[tuple[np.ndarray, int]]:
    """(array, real images in it): small chunks for a dynamic-batch model; for a static-batch model,
    its batch size, the last chunk padded with repeats of its last image (padding is not counted)."""
    for batch in batches:
        array = batch.detach().float().cpu().numpy()
        size = static_batch or _chunk_size(array.shape)
        for start in range(0, len(array), size):
            chunk = array[start : start + size]
            real = len(chunk)
            if static_batch is not None and real < static_batch:
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], static_batch - real, axis=0)])
            yield chunk, real


def collect_ranges(
    model_path: Path,
    batches: Iterable[torch.Tensor],
    method: str,
    symmetric: bool,
    work_dir: Path,
    log: Callable[[str], None] = print,
) -> dict[str, tuple[float, float]]:
    """Run the FP32 ONNX model over the calibration batches and return tensor name -> (lowest, highest)."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(model_path))
    names = _float_tensors(model)
    existing = {output.name for output in model.graph.output}
    for name in names:
        if name not in existing:
            model.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    augmented = Path(work_dir) / "calibration-augmented.onnx"
    onnx.save(model, str(augmented))
    input_info = model.graph.input[0]
    dim0 = input_info.type.tensor_type.shape.dim[0]
    static_batch = dim0.dim_value if dim0.HasField("dim_value") else None
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep every tensor
    session = ort.InferenceSession(str(augmented), options, providers=["CPUExecutionProvider"])
    output_names = [output.name for output in session.get_outputs()]
    wanted = set(names)
    stats = {name: _TensorStats(histogram=method != "max") for name in names}
    seen = 0
    for array, real in _rechunk(batches, static_batch):
        outputs = session.run(output_names, {input_info.name: array})
        for name, value in zip(output_names, outputs):
            if name in wanted:
                stats[name].update(value[:real] if value.ndim and value.shape[0] == len(array) else value)
        seen += real
    if seen == 0:
        raise UsageError("the calibration data yielded no images")
    log(f"calibration: {method} ranges for {len(names)} tensors from {seen} images")
    return {name: compute_range(stat, method, symmetric) for name, stat in stats.items()}


# ---------------------------------------------------------------------------------------- quantization


@dataclass
class QuantizeResult:
    """What ``quantize_model`` did, for the manifest's ``quantization`` section."""

    placement: str
    ranges: dict[str, tuple[float, float]]
    higher_precision_layers: list[str] = field(default_factory=list)
    options: dict = field(default_factory=dict)

    def manifest(self) -> dict:
        return {
            "tool": "onnxruntime",
            "format": "QDQ",
            "per_channel_weights": True,
            "activations": self.options["activations"],
            "weights": "int8 symmetric per-channel",
            "placement": self.placement,
            "placement_reason": PLACEMENTS[self.placement],
            "higher_precision_layers": self.higher_precision_layers,
            "quantized_tensors": len(self.ranges),
            "simulated_top1": None,
        }


def _classifier_nodes(model) -> list[str]:
    """The final Gemm/MatMul (the fc layer): kept in float."""
    return [node.name for node in model.graph.node if node.op_type in ("Gemm", "MatMul")][-1:]


def write_range_cache(ranges: dict[str, tuple[float, float]], method: str, path: Path) -> None:
    """The ranges as plain JSON (tensor -> lowest/highest), as stored in the bundle."""
    payload = {
        "format": "resnet-edge-calibration-cache",
        "method": method,
        "tensors": {name: {"lowest": low, "highest": high} for name, (low, high) in sorted(ranges.items())},
    }
    Path(path).write_text(json.dumps(payload, indent=1) + "\n")


def quantize_model(
    fp32_path: Path,
    out_path: Path,
    batches: Iterable[torch.Tensor],
    method: str,
    placement: str,
    work_dir: Path,
    log: Callable[[str], None] = print,
    keep_float: Iterable[str] = (),
) -> QuantizeResult:
    """FP32 ONNX -> calibrated INT8 QDQ ONNX at ``out_path`` with the given placement.

    ``keep_float``: module names (``layer3.1.conv2``) whose convolution / linear node stays in float,
    besides the classifier (``BuildConfig.options["keep_fp"]``, set by ``--max-top1-drop``).
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.calibrate import TensorData, TensorsData, save_tensors_data
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if placement not in PLACEMENTS:
        raise ValueError(f"unknown placement {placement!r}")
    work_dir = Path(work_dir)
    prepared = work_dir / "prepared.onnx"
    with _quiet():
        quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=False)
    symmetric = placement == "tensorrt"
    ranges = collect_ranges(prepared, batches, method, symmetric, work_dir, log)
    cache = work_dir / "ort-calibration-cache.json"
    tensors = {
        name: TensorData(lowest=np.array(low, dtype=np.float32), highest=np.array(high, dtype=np.float32))
        for name, (low, high) in ranges.items()
    }
    save_tensors_data(TensorsData(CalibrationMethod.MinMax, tensors), cache)
    model = onnx.load(str(prepared))
    float_nodes = _classifier_nodes(model)
    wanted = {f"{layer}.weight" for layer in keep_float}
    float_nodes += [node.name for node in model.graph.node if len(node.input) > 1 and node.input[1] in wanted and node.name not in float_nodes]
    if placement == "onnxruntime-cpu":
        options = dict(
            activation_type=QuantType.QUInt8,
            op_types_to_quantize=None,
            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
        )
        activations = "uint8 asymmetric per-tensor"
    else:
        options = dict(
            activation_type=QuantType.QInt8,
            op_types_to_quantize=["Conv", "Add"],
            extra_options={
                "ActivationSymmetric": True,
                "WeightSymmetric": True,
                "QuantizeBias": False,
                "OpTypesToExcludeOutputQuantization": ["Conv", "Add"],
            },
        )
        activations = "int8 symmetric per-tensor"
    with _quiet():
        quantize_static(
            str(prepared),
            str(out_path),
            calibration_data_reader=None,
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            reduce_range=False,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=float_nodes,
            calibrate_method=CalibrationMethod.MinMax,
            calibration_cache_path=str(cache),
            **options,
        )
    names = {node.name: node for node in model.graph.node}
    layers = [_layer_name(names[name]) for name in float_nodes]
    return QuantizeResult(placement, ranges, layers, {"activations": activations})


def _layer_name(node) -> str:
    """The PyTorch module a node came from: its weight's name without ``.weight`` (``fc``), else the node name."""
    if len(node.input) > 1 and node.input[1].endswith(".weight"):
        return node.input[1][: -len(".weight")]
    return node.name


@contextlib.contextmanager
def _quiet():
    """onnxruntime.quantization prints progress and warnings; keep them off the user's terminal."""
    logger = logging.getLogger()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logger.setLevel(level)
