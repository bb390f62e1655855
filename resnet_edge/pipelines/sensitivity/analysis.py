"""Per-layer INT8 sensitivity: which layers cost accuracy when quantized.

Built on ModelOpt's fake quantization (``modelopt_ptq``): the BatchNorm-folded model is calibrated
once (exactly as the TensorRT backend builds it), then its calibrated quantizers are switched per
layer (``disable_layers`` / ``enable_layers`` keep the ranges, so nothing is recalibrated):

``only``    one layer quantized, every other in float: top-1 drop against FP32 caused by that layer alone;
``revert``  every layer quantized but one: top-1 regained by keeping that layer in float. This is what
            the precision fallback uses, because it sees the layer in the company it will really keep.

A layer is whatever owns calibrated quantizers: a convolution (input + weight), the classifier ``fc``,
or a residual block (``layer1.0``: the Q/DQ on the shortcut input of its add). Top-1 moves in steps of
one image, so layers are ranked by their top-1 change and, among equals, by the KL divergence of their
softmax from the FP32 model's (``kl``), which moves continuously.

The validation images are preprocessed once and kept in memory (``EvalSet``); the FP32 logits are
computed once. Measurements are on the ``val`` split of ``--data``: use enough images that a one-image
step (100 / N points) is well below the differences you care about.
"""

from __future__ import annotations

import fnmatch
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable

import torch
from torch import nn

from ...core import defaults
from ...core.errors import UsageError
from ...quantize import modelopt_ptq as ptq
from ...quantize.evaluation import EvalSet, Evaluator
from ...quantize.modelopt_ptq import calibrate_folded
from ...quantize.sensitivity import LayerSensitivity, layer_kind, only_pass, rank_layers, revert_pass

log = logging.getLogger(__name__)

MODES = defaults.SENSITIVITY_MODES
REPORT_SCHEMA = "resnet-edge-sensitivity-report"


def select_layers(names: list[str], patterns: Iterable[str]) -> list[str]:
    """The names matching any of the fnmatch ``patterns``, in model order; a ``UsageError`` for a
    pattern that matches nothing."""
    selected: set[str] = set()
    for pattern in patterns:
        matches = [name for name in names if fnmatch.fnmatchcase(name, pattern)]
        if not matches:
            raise UsageError(f"--layers {pattern!r} matches no quantized layer; layers look like: {', '.join(names[:6])}, ...")
        selected.update(matches)
    return [name for name in names if name in selected]


@dataclass
class SensitivityResult:
    mode: str
    method: str
    num_images: int
    fp32_top1: float
    int8_top1: float
    int8_kl: float
    layers: list[LayerSensitivity] = field(default_factory=list)  # ranked, most sensitive first
    evaluations: int = 0
    seconds: float = 0.0

    @property
    def int8_drop(self) -> float:
        return round(self.fp32_top1 - self.int8_top1, 4)

    def ranking(self) -> list[str]:
        return [entry.layer for entry in self.layers]

    def to_dict(self) -> dict:
        def rounded(entry: LayerSensitivity) -> dict:
            return {key: (round(value, 6) if isinstance(value, float) else value) for key, value in asdict(entry).items()}

        return {
            "schema": REPORT_SCHEMA,
            "schema_version": 1,
            "mode": self.mode,
            "method": self.method,
            "num_images": self.num_images,
            "fp32_top1": round(self.fp32_top1, 4),
            "int8_top1": round(self.int8_top1, 4),
            "int8_drop": self.int8_drop,
            "int8_kl": round(self.int8_kl, 6),
            "evaluations": self.evaluations,
            "seconds": round(self.seconds, 1),
            "layers": [rounded(entry) for entry in self.layers],
        }


def analyze(
    model: nn.Module,
    calibration: Iterable,
    eval_set: EvalSet,
    config: ptq.PTQConfig = ptq.PTQConfig(),
    mode: str = "both",
    device: torch.device | str = "cpu",
    quantized: nn.Module | None = None,
    progress: Callable[[str], None] | None = None,
    layers: Iterable[str] | None = None,
) -> SensitivityResult:
    """Calibrate ``model`` (FP32, unfolded) once and measure every quantized layer's sensitivity.

    ``quantized``: an already calibrated fake-quant model of ``model`` (from ``calibrate_folded``) to
    reuse; its quantizer switches are restored afterwards. ``layers``: fnmatch patterns
    (``"layer3.*"``, ``"fc"``) to measure only some layers; the others stay quantized throughout.
    ``progress`` is called with each layer name after it is measured.
    """
    if mode not in MODES:
        raise UsageError(f"unknown sensitivity mode {mode!r}; choose one of: {', '.join(MODES)}")
    started = time.time()
    device = torch.device(device)
    if quantized is None:
        log.info(f"calibrating INT8 ({config.method}) with ModelOpt")
        quantized = calibrate_folded(model, calibration, config, device)
    evaluator = Evaluator(eval_set, model, device)
    int8 = evaluator.measure(quantized)
    layers_map = ptq.quantized_layers(quantized)
    disabled = set(ptq.higher_precision_layers(quantized))
    selected = set(select_layers(list(layers_map), layers)) if layers else set(layers_map)
    layers = [layer for layer in layers_map if layer not in disabled and layer in selected]
    if not layers:
        raise UsageError("no quantized layer is left to measure (every selected layer is already in float)")
    log.info(f"FP32 top-1 {evaluator.fp32_top1:.2f}%, INT8 (simulated) {int8.top1:.2f}% on {eval_set.num_images} images; "
             f"measuring {len(layers)} layers ({mode})")
    entries = {layer: LayerSensitivity(layer, layer_kind(quantized, layer), list(layers_map[layer])) for layer in layers}
    if mode in ("only", "both"):
        # "only": this layer alone is INT8, so every other layer (selected or not) is off for the pass.
        for layer, result in only_pass(quantized, evaluator, layers, progress, everything=list(layers_map)).items():
            entry = entries[layer]
            entry.only_top1 = round(result.top1, 4)
            entry.only_drop = round(evaluator.fp32_top1 - result.top1, 4)
            entry.only_kl = result.kl
    if mode in ("revert", "both"):
        for layer, result in revert_pass(quantized, evaluator, layers, progress).items():
            entry = entries[layer]
            entry.revert_top1 = round(result.top1, 4)
            entry.revert_gain = round(result.top1 - int8.top1, 4)
            entry.revert_kl_gain = int8.kl - result.kl
    return SensitivityResult(
        mode=mode,
        method=config.method,
        num_images=eval_set.num_images,
        fp32_top1=evaluator.fp32_top1,
        int8_top1=int8.top1,
        int8_kl=int8.kl,
        layers=rank_layers(list(entries.values())),
        evaluations=evaluator.evaluations,
        seconds=time.time() - started,
    )
