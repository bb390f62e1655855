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

Calibration ranges come from ``quantize.ranges`` (through ``onnx_collect``), the implementation the
ModelOpt path uses too, rather than from ORT's calibrators: the four methods then match TensorRT /
pytorch-quantization semantics and both paths. The ranges reach ``quantize_static`` through its
``calibration_cache_path``; they are also written to the bundle (``calibration-cache.json``): the
scales every Q/DQ node gets are exactly these.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import torch

from ..core.errors import UsageError
from ..core.io import file_sha256, read_json_document, write_atomic
from .auto import AUTO, AutoChoice
from .inputs import CalibrationData
from .onnx_collect import collect_ranges, float_tensors, onnx_module
from .ort_auto import auto_ranges

log = logging.getLogger(__name__)

PLACEMENTS = {
    "onnxruntime-cpu": "uint8 asymmetric activations and per-channel int8 weights on every supported op, "
    "so ONNX Runtime fuses them into integer kernels (QLinearConv, QLinearAdd): the fastest form on a CPU",
    "tensorrt": "symmetric int8 activations on convolution and residual-add inputs only, per-channel symmetric "
    "weights and float biases, as TensorRT's explicit-quantization guide asks; it also runs on ONNX Runtime, more slowly",
}


def ort_quantization():
    """``onnxruntime.quantization`` (an optional dependency: the ONNX Runtime backend's)."""
    import onnxruntime.quantization as module
    import onnxruntime.quantization.calibrate  # noqa: F401  (TensorData, save_tensors_data)
    import onnxruntime.quantization.shape_inference  # noqa: F401  (quant_pre_process)

    return module


def placement_for_target(target: str) -> str:
    """``onnxruntime-cpu`` for ``--target cpu``, ``tensorrt`` for a GPU target."""
    return "onnxruntime-cpu" if target == "cpu" else "tensorrt"


@dataclass
class QuantizeResult:
    """What ``quantize_model`` did, for the manifest's ``quantization`` section."""

    placement: str
    ranges: dict[str, tuple[float, float]]
    higher_precision_layers: list[str] = field(default_factory=list)
    options: dict = field(default_factory=dict)
    auto: AutoChoice | None = None  # what ``--calib-method auto`` measured and chose

    def manifest(self) -> dict:
        section = {
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
        if self.auto is not None:
            section["calibration_auto"] = self.auto.manifest()  # compile files it under calibration.auto
        return section


def write_range_cache(ranges: dict[str, tuple[float, float]], method: str, path: Path, chosen: str | None = None) -> None:
    """The ranges as plain JSON (tensor -> lowest/highest), as stored in the bundle; ``chosen``: what
    ``auto`` chose."""
    payload = {
        "format": "resnet-edge-calibration-cache",
        "method": method,
        **({"chosen": chosen} if chosen else {}),
        "tensors": {name: {"lowest": low, "highest": high} for name, (low, high) in sorted(ranges.items())},
    }
    write_atomic(path, json.dumps(payload, indent=1) + "\n")


@dataclass
class StoredRanges:
    """A bundle's ``calibration-cache.json``, read back: the ranges, the rule that made them and what
    ``auto`` chose (None otherwise)."""

    ranges: dict[str, tuple[float, float]]
    method: str
    chosen: str | None = None


def read_range_cache(path: Path) -> StoredRanges:
    """The ranges ``write_range_cache`` wrote; a ``UsageError`` in one line for anything else."""
    path = Path(path)

    def unreadable(error: Exception) -> str:
        return f"cannot read calibration ranges from {path} ({error}); pass a bundle's calibration-cache.json"

    payload = read_json_document(path, unreadable)
    try:
        if payload.get("format") != "resnet-edge-calibration-cache":
            raise ValueError("not a resnet-edge calibration cache")
        ranges = {name: (float(entry["lowest"]), float(entry["highest"])) for name, entry in payload["tensors"].items()}
        return StoredRanges(ranges, str(payload["method"]), payload.get("chosen"))
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise UsageError(unreadable(error)) from None


def ranges_for_placement(ranges: dict[str, tuple[float, float]], placement: str) -> dict[str, tuple[float, float]]:
    """Stored ranges in ``placement``'s form: symmetric (-amax, amax) for ``tensorrt`` (an asymmetric
    CPU range widens to its largest |x|), as stored for ``onnxruntime-cpu``. Symmetric ranges stay
    what they were either way, so a round trip through the same placement is exact."""
    if placement != "tensorrt":
        return dict(ranges)
    return {name: (-max(abs(low), abs(high)), max(abs(low), abs(high))) for name, (low, high) in ranges.items()}


def _check_coverage(prepared_model, ranges: dict[str, tuple[float, float]]) -> None:
    """Stored ranges must name every float tensor of the graph being quantized."""
    missing = [name for name in float_tensors(prepared_model) if name not in ranges]
    if missing:
        raise UsageError(f"the stored calibration ranges lack {len(missing)} tensors of the exported graph "
                         f"(e.g. {missing[0]!r}): they were made for another export; calibrate again")


def _float_nodes(model, keep_float: Iterable[str]) -> list[str]:
    """Nodes left in float: the final Gemm/MatMul (the fc layer) and the conv/linear nodes of ``keep_float``."""
    nodes = [node.name for node in model.graph.node if node.op_type in ("Gemm", "MatMul")][-1:]
    wanted = {f"{layer}.weight" for layer in keep_float}
    nodes += [node.name for node in model.graph.node if len(node.input) > 1 and node.input[1] in wanted and node.name not in nodes]
    return nodes


def _layer_name(node) -> str:
    """The PyTorch module a node came from: its weight's name without ``.weight`` (``fc``), else the node name."""
    if len(node.input) > 1 and node.input[1].endswith(".weight"):
        return node.input[1][: -len(".weight")]
    return node.name


def _placement_options(placement: str) -> tuple[dict, str]:
    """``quantize_static`` keyword arguments for a placement, and its activation description."""
    quant_type = ort_quantization().QuantType
    if placement == "onnxruntime-cpu":
        options = dict(
            activation_type=quant_type.QUInt8,
            op_types_to_quantize=None,
            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
        )
        return options, "uint8 asymmetric per-tensor"
    options = dict(
        activation_type=quant_type.QInt8,
        op_types_to_quantize=["Conv", "Add"],
        extra_options={
            "ActivationSymmetric": True,
            "WeightSymmetric": True,
            "QuantizeBias": False,
            "OpTypesToExcludeOutputQuantization": ["Conv", "Add"],
        },
    )
    return options, "int8 symmetric per-tensor"


def _save_ort_cache(ranges: dict[str, tuple[float, float]], path: Path) -> None:
    """The ranges in ORT's calibration-cache form, which ``quantize_static`` reads instead of calibrating."""
    quantization = ort_quantization()
    calibrate = quantization.calibrate
    tensors = {
        name: calibrate.TensorData(lowest=np.array(low, dtype=np.float32), highest=np.array(high, dtype=np.float32))
        for name, (low, high) in ranges.items()
    }
    calibrate.save_tensors_data(calibrate.TensorsData(quantization.CalibrationMethod.MinMax, tensors), path)


def quantize_model(
    fp32_path: Path,
    out_path: Path,
    batches: Iterable[torch.Tensor],
    method: str,
    placement: str,
    work_dir: Path,
    keep_float: Iterable[str] = (),
    ranges: dict[str, tuple[float, float]] | None = None,
) -> QuantizeResult:
    """FP32 ONNX -> calibrated INT8 QDQ ONNX at ``out_path`` with the given placement.

    ``method``: a range rule, or ``auto`` (``ort_auto``: every rule scored on held-out calibration
    images with this placement's Q/DQ graph, the best kept; ``QuantizeResult.auto`` says what it found).
    ``keep_float``: module names (``layer3.1.conv2``) whose convolution / linear node stays in float,
    besides the classifier (``QuantOptions.keep_float``, set by ``--max-top1-drop``).
    ``ranges``: stored ranges (``read_range_cache``) used as they are (``ranges_for_placement``) instead
    of calibrating; ``batches`` and ``method`` are then not used.
    """
    quantization = ort_quantization()
    if placement not in PLACEMENTS:
        raise ValueError(f"unknown placement {placement!r}")
    work_dir = Path(work_dir)
    prepared = work_dir / "prepared.onnx"
    with _quiet():
        quantization.shape_inference.quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=False)
    model = onnx_module().load(str(prepared))
    float_nodes = _float_nodes(model, keep_float)
    options, activations = _placement_options(placement)

    def write(ranges: dict[str, tuple[float, float]], path: Path) -> None:
        _write_qdq(prepared, path, ranges, float_nodes, options, work_dir)

    choice = None
    if ranges is not None:
        _check_coverage(model, ranges)
        ranges = ranges_for_placement(ranges, placement)
    elif method == AUTO:
        ranges, choice = auto_ranges(prepared, batches, placement == "tensorrt", write, work_dir)
    else:
        ranges = collect_ranges(prepared, batches, method, placement == "tensorrt", work_dir)
    write(ranges, Path(out_path))
    names = {node.name: node for node in model.graph.node}
    layers = [_layer_name(names[name]) for name in float_nodes]
    return QuantizeResult(placement, ranges, layers, {"activations": activations}, choice)


def quantize_and_store(fp32_path: Path, out_path: Path, cache_path: Path, calibration: CalibrationData | None, placement: str, work_dir: Path,
                       keep_float: Iterable[str] = (), ranges_file: Path | None = None) -> dict:
    """What an INT8 build of the ONNX Q/DQ form does: ``quantize_model`` with ``calibration`` (a
    ``CalibrationData``: its images and ``method``) or, with ``ranges_file``, with those stored ranges
    (no calibration run); the ranges used written to ``cache_path``. Returns the ``quantization`` section."""
    stored = read_range_cache(ranges_file) if ranges_file is not None else None
    method = stored.method if stored is not None else calibration.method
    source = f"stored {method} ranges from {ranges_file}" if stored is not None else f"{method} calibration"
    log.info(f"quantizing to INT8 Q/DQ, {placement} placement, {source}")
    result = quantize_model(fp32_path, out_path, calibration, method, placement, work_dir, keep_float=keep_float,
                            ranges=stored.ranges if stored is not None else None)
    chosen = stored.chosen if stored is not None else (result.auto.chosen if result.auto is not None else None)
    write_range_cache(result.ranges, method, cache_path, chosen)
    section = result.manifest()
    if stored is not None:
        section["ranges_from"] = {"file": str(Path(ranges_file).absolute()), "sha256": file_sha256(ranges_file)}
    return section


def _write_qdq(prepared: Path, out_path: Path, ranges: dict[str, tuple[float, float]], float_nodes: list[str],
               options: dict, work_dir: Path) -> None:
    """``quantize_static`` of the prepared graph with exactly ``ranges`` (through ORT's calibration cache)."""
    quantization = ort_quantization()
    cache = Path(work_dir) / "ort-calibration-cache.json"
    _save_ort_cache(ranges, cache)
    with _quiet():
        quantization.quantize_static(
            str(prepared),
            str(out_path),
            calibration_data_reader=None,
            quant_format=quantization.QuantFormat.QDQ,
            per_channel=True,
            reduce_range=False,
            weight_type=quantization.QuantType.QInt8,
            nodes_to_exclude=float_nodes,
            calibrate_method=quantization.CalibrationMethod.MinMax,
            calibration_cache_path=str(cache),
            **options,
        )


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """onnxruntime.quantization prints progress and warnings; keep them off the user's terminal."""
    logger = logging.getLogger()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logger.setLevel(level)


__all__ = ["PLACEMENTS", "QuantizeResult", "StoredRanges", "quantize_and_store", "read_range_cache", "ranges_for_placement", "collect_ranges", "placement_for_target", "quantize_model", "write_range_cache"]
