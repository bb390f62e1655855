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
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable

import torch
from torch import nn
from torch.utils.data import Subset
from tqdm import tqdm

from ..core import defaults, hostinfo
from ..core.device import resolve_device
from ..core.errors import UsageError
from ..core.io import check_output_path, write_json
from ..data import eval_transform, open_data
from ..data.classmap import map_classes
from ..fuse.fold import fold_batchnorm
from ..quantize import modelopt_ptq as ptq
from ..weights import resolve_weights
from .calibration import loader, prepare_calibration
from .evaluation import EvalSet, Evaluator, Measurement

log = logging.getLogger(__name__)

MODES = defaults.SENSITIVITY_MODES
REPORT_SCHEMA = "resnet-edge-sensitivity-report"


# ------------------------------------------------------------------------------------- calibration


def calibrate_folded(model: nn.Module, calibration: Iterable, config: ptq.PTQConfig, device: torch.device | str = "cpu") -> nn.Module:
    """The fake-quant model the TensorRT backend builds: ``model`` with BatchNorm folded, calibrated."""
    return ptq.calibrate(fold_batchnorm(model).to(device), calibration, config, device=device)


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


# ------------------------------------------------------------------------------------------ analysis


@dataclass
class LayerSensitivity:
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


# ----------------------------------------------------------------------------------------- command


@dataclass
class SensitivityOptions:
    """The ``sensitivity`` command's options, as plain values (the CLI fills this in)."""

    arch: str
    data: str
    weights: Path | None = None
    calib_data: str | None = None
    calib_set: Path | None = None
    calib_images: int | None = None
    calib_method: str = defaults.CALIB_METHOD
    val_images: int | None = None
    mode: str = defaults.SENSITIVITY_MODE
    top: int | None = None  # rows the table shows; checked here with the other numbers
    layers: tuple[str, ...] = ()
    report: Path | None = None
    device: str = defaults.DEVICE
    command: str | None = None
    progress: bool = True
    class_map: Path | None = None  # --class-map: --data / calibration class name -> model class name
    by_index: bool = False  # --by-index: match labels to the model's classes by position


@dataclass
class SensitivityRun:
    """What ``run_sensitivity`` measured, and the JSON report it wrote (None without ``report``)."""

    result: SensitivityResult
    report: Path | None = None


def _check_options(options: SensitivityOptions) -> None:
    if options.mode not in MODES:
        raise UsageError(f"unknown sensitivity mode {options.mode!r}; choose one of: {', '.join(MODES)}")
    if options.calib_data and options.calib_set:
        raise UsageError("pass either --calib-data or --calib-set, not both")
    if not (options.calib_data or options.calib_set):
        raise UsageError("sensitivity needs real calibration images: pass --calib-data SPEC or --calib-set calibration/NAME.json")
    for flag, value in (("--calib-images", options.calib_images), ("--val-images", options.val_images), ("--top", options.top)):
        if value is not None and value < 1:
            raise UsageError(f"{flag} must be at least 1, got {value}")


def run_sensitivity(options: SensitivityOptions) -> SensitivityRun:
    """``resnet-edge sensitivity``: check, load, calibrate (as ``compile`` draws its calibration set),
    analyze, and write the JSON report when ``options.report`` is set."""
    _check_options(options)
    device = resolve_device(options.device)
    report = check_output_path(options.report, "--report")
    ptq.require_modelopt()
    source = open_data(options.data)
    loaded = resolve_weights(options.arch, options.weights)
    if source.num_classes != len(loaded.classes) and options.class_map is None:
        raise UsageError(f"--data {options.data} has {source.num_classes} classes and the model {len(loaded.classes)}; "
                         f"use data with the model's classes")
    matched = map_classes(loaded.classes, source.classes, class_map=options.class_map, by_index=options.by_index, flag=f"--data {options.data}")
    dataset = source.split("val", transform=eval_transform(loaded.preprocessing))
    if options.val_images is not None and options.val_images < len(dataset):
        dataset = Subset(dataset, range(options.val_images))
    dataset = matched.apply(dataset)
    calibration = prepare_calibration(loaded, options.calib_set, options.calib_data, options.calib_images, options.calib_method,
                                      class_map=options.class_map, by_index=options.by_index)
    eval_set = EvalSet.from_loader(loader(dataset, 64))
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with tqdm(unit="layer", desc="sensitivity", disable=None if options.progress else True, file=sys.stderr) as bar:
        result = analyze(
            loaded.model.float().eval(), calibration.data, eval_set, ptq.PTQConfig(method=options.calib_method), options.mode,
            device, progress=lambda _: bar.update(1), layers=list(options.layers) or None,
        )
    if report is None:
        return SensitivityRun(result)
    payload = {
        **result.to_dict(),
        "created": started,
        "command": options.command,
        "arch": options.arch,
        "weights": str(Path(options.weights).expanduser().absolute()) if options.weights else None,
        "weights_source": loaded.source,
        "data": {"spec": options.data, "split": "val", "num_images": eval_set.num_images},
        "calibration": calibration.manifest,
        "device": str(device),
        "host": hostinfo.host_facts(),
    }
    return SensitivityRun(result, write_json(report, payload))
