"""INT8 post-training quantization with NVIDIA ModelOpt, in the explicit Q/DQ form TensorRT builds.

The flow (``examples/dynamo/vgg16_ptq.py`` in Torch-TensorRT is the reference):

1. ``calibrate(model, loader)``: ``mtq.quantize(copy, INT8 config)`` inserts ``TensorQuantizer``
   modules (per-channel weights, per-tensor activations); ModelOpt's ``max`` calibration pass then
   runs the calibration batches. Weights take their per-channel max; every activation quantizer
   takes the range ``quantize.ranges`` computes for the chosen method (``range_calibrator``), the
   same implementation the ONNX Runtime path uses. The result is a *fake-quant* model: it runs
   anywhere, the CPU included, and rounds every quantized tensor to its INT8 grid, so its accuracy
   is what the INT8 engine will get (up to TensorRT's kernel choices).
2. ResNet blocks get one more quantizer on the shortcut input of the residual add (``residual``).
3. ``export_for_tensorrt(model, example)`` (``qdq_export``): each quantizer becomes one
   ``tensorrt::quantize_op`` node, i.e. a Q/DQ pair in TensorRT. Needs CUDA.

Switching layers back to higher precision (sensitivity analysis, fallback) is in ``quantizers``;
this module re-exports those names, so ``modelopt_ptq`` stays the one import for the ModelOpt path.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from typing import Callable, Iterable

import torch
from torch import nn

from ..core.defaults import RESIDUAL_QUANTIZER
from ..core.errors import UsageError
from ..fuse.fold import fold_batchnorm
from .modelopt_import import MODELOPT_INSTALL, modelopt_version, quiet, require_modelopt
from .qdq_export import count_qdq_nodes, export_for_tensorrt
from .quantizers import (
    disable_layers,
    enable_layers,
    has_amax,
    higher_precision_layers,
    is_quantized,
    iter_quantizers,
    layers_disabled,
    quantized_layers,
)
from .auto import AUTO, AutoChoice, HeldOutSplit, split_held_out
from .modelopt_auto import choose_amaxes, model_logits
from .range_calibrator import use_range_calibrators
from .ranges import CALIBRATION_METHODS, PERCENTILE, check_method
from .residual import register_residual_quantization

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PTQConfig:
    """What ``calibrate`` does.

    Attributes:
        method: how each activation's range (amax) is chosen, by ``quantize.ranges``: ``"auto"``
            (every rule scored on held-out calibration images with this fake-quant model, the best
            kept: ``quantize.auto``), ``"max"``
            (largest |x| seen), ``"mse"`` (the clip minimising the quantization error),
            ``"entropy"`` (the KL-divergence choice of TensorRT's entropy calibrator, every
            histogram bin a candidate) or ``"percentile"`` (the ``percentile``-th percentile of
            |x|). Weights always take their per-channel (or per-tensor) max.
        per_channel_weights: one scale per output channel for conv/linear weights (TensorRT's
            recommendation; per-tensor otherwise).
        quantize_residual: Q/DQ on the shortcut input of each residual add (see ``residual``).
        num_batches: stop after this many calibration batches (``None``: the whole loader).
        keep_fp: layer names (fnmatch patterns, e.g. ``"fc"`` or ``"layer4.*"``) left in higher
            precision after calibration; see ``disable_layers``.
        percentile: the percentile of |x| the ``"percentile"`` method takes as amax.
    """

    method: str = "max"
    per_channel_weights: bool = True
    quantize_residual: bool = True
    num_batches: int | None = None
    keep_fp: tuple[str, ...] = field(default_factory=tuple)
    percentile: float = PERCENTILE

    def __post_init__(self) -> None:
        if self.method != AUTO:
            check_method(self.method)
        if not 50.0 < self.percentile <= 100.0:
            raise UsageError(f"the calibration percentile must lie in (50, 100], got {self.percentile}")
        if self.num_batches is not None and self.num_batches < 1:
            raise UsageError(f"the number of calibration batches must be at least 1, got {self.num_batches}")


def modelopt_config(config: PTQConfig = PTQConfig()) -> dict:
    """The ``mtq.quantize`` config: ModelOpt's ``INT8_DEFAULT_CFG`` plus this project's entries.

    ``INT8_DEFAULT_CFG`` is a list of ``{"quantizer_name", "cfg", "enable"}`` entries in ModelOpt
    >= 0.4x and a ``{pattern: attributes}`` dict in the older releases that Jetson images carry;
    later entries override earlier ones in both, so ours are appended. ``algorithm`` is ``None``:
    ``calibrate`` runs the calibration pass itself, after attaching the range calibrators.
    """
    mtq = require_modelopt()
    result = copy.deepcopy(mtq.INT8_DEFAULT_CFG)
    per_tensor = {"num_bits": 8, "axis": None}
    entries: list[tuple[str, dict | None, bool]] = []
    if not config.per_channel_weights:
        entries.append(("*weight_quantizer", per_tensor, True))
    entries.append((f"*{RESIDUAL_QUANTIZER}", per_tensor if config.quantize_residual else None, config.quantize_residual))
    quant_cfg = result["quant_cfg"]
    for pattern, attributes, enable in entries:
        if isinstance(quant_cfg, list):
            entry = {"quantizer_name": pattern, "enable": enable}
            if attributes is not None:
                entry["cfg"] = dict(attributes)
            quant_cfg.append(entry)
        else:
            quant_cfg[pattern] = {**(attributes or {}), "enable": enable}
    result["algorithm"] = None
    return result


def _images(batch) -> torch.Tensor:
    """The image tensor of a loader batch: ``images`` or ``(images, labels, ...)``."""
    if isinstance(batch, torch.Tensor):
        return batch
    if isinstance(batch, (list, tuple)) and batch and isinstance(batch[0], torch.Tensor):
        return batch[0]
    if isinstance(batch, dict) and isinstance(batch.get("image"), torch.Tensor):
        return batch["image"]
    raise UsageError(f"a calibration batch must be an image tensor or (images, labels), got {type(batch).__name__}")


def make_forward_loop(
    loader: Iterable, device: torch.device | str = "cpu", num_batches: int | None = None, progress: Callable[[int], None] | None = None
) -> Callable[[nn.Module], None]:
    """The ``forward_loop`` ModelOpt calls: every batch of ``loader`` (up to ``num_batches``) through the model.

    Raises ``UsageError`` from inside the calibration pass when the loader yields no batch:
    calibrating on nothing would leave every activation quantizer without an ``amax``.
    """
    device = torch.device(device)

    def forward_loop(model: nn.Module) -> None:
        seen = 0
        with torch.no_grad():
            for batch in loader:
                images = _images(batch)
                model(images.to(device=device, dtype=torch.float32, non_blocking=True))
                seen += 1
                if progress is not None:
                    progress(images.shape[0])
                if num_batches is not None and seen >= num_batches:
                    break
        if seen == 0:
            raise UsageError("the calibration data yielded no images; INT8 needs a non-empty calibration set")

    return forward_loop


def calibrate(
    model: nn.Module,
    loader: Iterable,
    config: PTQConfig = PTQConfig(),
    device: torch.device | str = "cpu",
    progress: Callable[[int], None] | None = None,
) -> nn.Module:
    """Calibrate a copy of ``model`` with ModelOpt and return it as a fake-quant INT8 model.

    ``model`` itself is left as it was (it stays the FP32 reference). ``loader`` yields image
    batches, NCHW float32 and already preprocessed, or ``(images, labels)`` pairs. Calibration runs
    on ``device``; the CPU works, a GPU is faster for large sets. ``calibrate_with_choice`` also
    returns what ``method="auto"`` measured.
    """
    return calibrate_with_choice(model, loader, config, device, progress)[0]


def calibrate_folded(model: nn.Module, calibration: Iterable, config: PTQConfig, device: torch.device | str = "cpu") -> nn.Module:
    """The fake-quant model the TensorRT backend builds: ``model`` with BatchNorm folded, calibrated
    (``sensitivity`` and the ``--max-top1-drop`` fallback measure this one)."""
    return calibrate(fold_batchnorm(model).to(device), calibration, config, device=device)


def calibrate_with_choice(
    model: nn.Module,
    loader: Iterable,
    config: PTQConfig = PTQConfig(),
    device: torch.device | str = "cpu",
    progress: Callable[[int], None] | None = None,
) -> tuple[nn.Module, AutoChoice | None]:
    """``calibrate``, and for ``method="auto"`` the ``AutoChoice`` (None otherwise).

    With ``auto`` every ``auto.HOLD_OUT_EVERY``-th calibration image is held out: the statistics
    come from the others, and the candidates are scored on the held-out ones against ``model``'s
    FP32 logits, with this fake-quant model (the layers of ``keep_fp`` already in float).
    """
    mtq = require_modelopt()
    if config.quantize_residual:
        register_residual_quantization()
    split: HeldOutSplit | None = None
    if config.method == AUTO:
        split = split_held_out(_images(batch) for batch in loader)
        loader = split.calibration
    quantized = copy.deepcopy(model).eval().to(device)
    forward_loop = make_forward_loop(loader, device, config.num_batches, progress)
    with quiet():
        mtq.quantize(quantized, modelopt_config(config), forward_loop=None)
        activations = use_range_calibrators(quantized, "entropy" if split is not None else config.method, config.percentile)
        mtq.calibrate(quantized, algorithm="max", forward_loop=forward_loop)
    uncalibrated = [name for name, quantizer in iter_quantizers(quantized) if quantizer.is_enabled and not has_amax(quantizer)]
    if uncalibrated:
        raise UsageError(f"calibration left {len(uncalibrated)} quantizers without a range (first: {uncalibrated[0]}); the calibration batches never reached them")
    log.debug("calibration: %s ranges for %d activation quantizers", config.method, len(activations))
    if config.keep_fp:
        disable_layers(quantized, config.keep_fp)
    choice = None
    if split is not None:
        reference = model_logits(copy.deepcopy(model).eval().to(device), split.held_out, device)
        choice = choose_amaxes(quantized.eval(), reference, split, device)
    return quantized.eval(), choice


def quantization_manifest(model: nn.Module, config: PTQConfig, simulated_top1: float | None = None,
                          choice: AutoChoice | None = None) -> dict:
    """The manifest's ``quantization`` object for a model calibrated by ``calibrate``; with ``choice``
    (``auto``), its record as ``calibration_auto`` (compile files it under ``calibration.auto``)."""
    section = {
        "tool": "modelopt",
        "tool_version": modelopt_version(),
        "format": "QDQ",
        "per_channel_weights": config.per_channel_weights,
        "residual_qdq": config.quantize_residual,
        "placement": "tensorrt",
        "placement_reason": (
            "explicit Q/DQ from ModelOpt: per-channel weights and per-tensor activations at every conv and "
            "the classifier, plus the shortcut input of each residual add so TensorRT fuses conv+add+relu in INT8"
        ),
        "higher_precision_layers": higher_precision_layers(model),
        "simulated_top1": simulated_top1,
    }
    if choice is not None:
        section["calibration_auto"] = choice.manifest()
    return section


__all__ = [
    "CALIBRATION_METHODS",
    "MODELOPT_INSTALL",
    "PTQConfig",
    "RESIDUAL_QUANTIZER",
    "calibrate",
    "calibrate_folded",
    "calibrate_with_choice",
    "count_qdq_nodes",
    "disable_layers",
    "enable_layers",
    "export_for_tensorrt",
    "higher_precision_layers",
    "is_quantized",
    "iter_quantizers",
    "layers_disabled",
    "make_forward_loop",
    "modelopt_config",
    "modelopt_version",
    "quantization_manifest",
    "quantized_layers",
    "register_residual_quantization",
    "require_modelopt",
]
