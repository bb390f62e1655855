"""Automatic precision fallback: keep the most sensitive layers out of INT8 until the accuracy budget holds.

``compile --int8 --max-top1-drop X --val-data SPEC`` calls ``plan_fallback`` before the backend builds:

1. calibrate the BatchNorm-folded model once with ModelOpt (the TensorRT backend's own calibration)
   and measure FP32 and simulated INT8 top-1 on the validation images;
2. if the drop is already within X, nothing stays in float;
3. otherwise rank the layers by how much top-1 each regains when it alone is kept in float
   (``quantize.sensitivity.revert_pass``; KL divergence breaks ties), then switch them off greedily in that order,
   re-measuring after each, until the simulated drop is within X;
4. prune: try to re-quantize each kept layer, least sensitive first, and keep it INT8 when the budget
   still holds, so the set is minimal in the greedy sense.

The plan's ``layers`` go to the backend as ``QuantOptions.keep_float`` (the quantizers of those
layers are disabled after calibration: they run in FP16/FP32), and ``manifest()`` is recorded in the
bundle as ``quantization.fallback``. Every figure is measured on the same images; with few of them the
plan fits those images (the budget is met on them, by construction), so use a held-out validation
split of realistic size.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from typing import Iterable

import torch
from torch import nn

from ...core.errors import CheckFailed, UsageError
from ...quantize import modelopt_ptq as ptq
from ...quantize.evaluation import EvalSet, Evaluator, Measurement
from ...quantize.inputs import CalibrationData, QuantOptions
from ...quantize.modelopt_ptq import calibrate_folded
from ...quantize.sensitivity import LayerSensitivity, layer_kind, rank_layers, revert_pass

log = logging.getLogger(__name__)

EPSILON = 1e-9


@dataclass
class FallbackPlan:
    """Which layers stay in higher precision, and the accuracy figures that chose them."""

    max_top1_drop: float
    num_images: int
    fp32_top1: float
    int8_top1: float  # every layer INT8 (simulated)
    final_top1: float  # with ``layers`` in float (simulated)
    layers: list[str] = field(default_factory=list)  # kept in higher precision, most sensitive first
    ranking: list[dict] = field(default_factory=list)  # the revert sensitivity of every layer
    steps: list[dict] = field(default_factory=list)  # what the search did, in order
    quantized_layers: int = 0
    evaluations: int = 0
    seconds: float = 0.0
    method: str = "max"

    @property
    def int8_drop(self) -> float:
        return round(self.fp32_top1 - self.int8_top1, 4)

    @property
    def final_drop(self) -> float:
        return round(self.fp32_top1 - self.final_top1, 4)

    @property
    def within_budget(self) -> bool:
        return self.final_drop <= self.max_top1_drop + EPSILON

    def manifest(self) -> dict:
        """The bundle manifest's ``quantization.fallback`` object."""
        return {
            "max_top1_drop": self.max_top1_drop,
            "simulator": "modelopt",
            "method": self.method,
            "num_images": self.num_images,
            "fp32_top1": round(self.fp32_top1, 4),
            "int8_top1": round(self.int8_top1, 4),
            "final_top1": round(self.final_top1, 4),
            "int8_drop": self.int8_drop,
            "final_drop": self.final_drop,
            "layers": list(self.layers),
            "quantized_layers": self.quantized_layers,
            "evaluations": self.evaluations,
            "steps": self.steps,
        }


def within(fp32_top1: float, top1: float, budget: float) -> bool:
    """``top1`` is at most ``budget`` points below ``fp32_top1`` (up to rounding)."""
    return fp32_top1 - top1 <= budget + EPSILON


def plan_fallback(
    model: nn.Module,
    calibration: Iterable,
    eval_set: EvalSet,
    max_top1_drop: float,
    config: ptq.PTQConfig = ptq.PTQConfig(),
    device: torch.device | str = "cpu",
    quantized: nn.Module | None = None,
) -> FallbackPlan:
    """Choose the layers to keep in higher precision so that simulated INT8 top-1 drops at most
    ``max_top1_drop`` points below FP32 on ``eval_set``. ``model`` is the FP32 reference (unfolded)."""
    if max_top1_drop < 0:
        raise UsageError(f"--max-top1-drop is in percentage points and cannot be negative, got {max_top1_drop}")
    started = time.time()
    device = torch.device(device)
    if quantized is None:
        log.info(f"precision fallback: calibrating INT8 ({config.method}) with ModelOpt to simulate the engine")
        quantized = calibrate_folded(model, calibration, config, device)
    evaluator = Evaluator(eval_set, model, device)
    fp32 = evaluator.fp32_top1
    int8 = evaluator.measure(quantized)
    already = set(ptq.higher_precision_layers(quantized))
    candidates = [layer for layer in ptq.quantized_layers(quantized) if layer not in already]
    plan = FallbackPlan(max_top1_drop, eval_set.num_images, fp32, int8.top1, int8.top1,
                        quantized_layers=len(candidates), method=config.method)
    log.info(f"precision fallback: FP32 top-1 {fp32:.2f}%, all-INT8 (simulated) {int8.top1:.2f}% on {eval_set.num_images} images "
             f"(drop {plan.int8_drop:.2f}, budget {max_top1_drop:g} pts)")
    if within(fp32, int8.top1, max_top1_drop):
        log.info("precision fallback: within budget, every layer stays INT8")
    else:
        ranked = _rank_by_revert(quantized, evaluator, candidates, int8)
        plan.ranking = [
            {"rank": e.rank, "layer": e.layer, "kind": e.kind, "revert_gain": e.revert_gain, "revert_kl_gain": round(e.revert_kl_gain, 6)}
            for e in ranked
        ]
        kept, top1 = _keep_until_within(quantized, evaluator, ranked, plan)
        plan.layers, plan.final_top1 = _prune(quantized, evaluator, kept, top1, plan)
    plan.evaluations, plan.seconds = evaluator.evaluations, round(time.time() - started, 1)
    if plan.layers and plan.within_budget:
        log.info(f"precision fallback: {len(plan.layers)} of {len(candidates)} layers stay in FP16/FP32 ({', '.join(plan.layers)}); "
                 f"simulated top-1 {plan.final_top1:.2f}% (drop {plan.final_drop:.2f} pts), {plan.evaluations} evaluations in {plan.seconds:.0f}s")
    elif not plan.within_budget:
        log.info(f"precision fallback: even with every layer in float the simulated drop is {plan.final_drop:.2f} pts")
    return plan


def _rank_by_revert(quantized: nn.Module, evaluator: Evaluator, candidates: list[str], int8: Measurement) -> list[LayerSensitivity]:
    """The candidates, ranked by what keeping each alone in float regains."""
    layers_map = ptq.quantized_layers(quantized)
    reverted = revert_pass(quantized, evaluator, candidates)
    entries = []
    for layer in candidates:
        entry = LayerSensitivity(layer, layer_kind(quantized, layer), list(layers_map[layer]))
        entry.revert_top1 = round(reverted[layer].top1, 4)
        entry.revert_gain = round(reverted[layer].top1 - int8.top1, 4)
        entry.revert_kl_gain = int8.kl - reverted[layer].kl
        entries.append(entry)
    return rank_layers(entries)


def _keep_until_within(quantized: nn.Module, evaluator: Evaluator, ranked: list[LayerSensitivity], plan: FallbackPlan) -> tuple[list[str], float]:
    """Greedy: keep layers in float, most sensitive first, until the budget holds; (kept, top-1)."""
    kept: list[str] = []
    top1 = plan.int8_top1
    for entry in ranked:
        ptq.disable_layers(quantized, [entry.layer])
        kept.append(entry.layer)
        top1 = evaluator.measure(quantized).top1
        plan.steps.append({"action": "keep", "layer": entry.layer, "top1": round(top1, 4)})
        log.info(f"precision fallback: {entry.layer} ({entry.kind}) kept in float -> {top1:.2f}%")
        if within(plan.fp32_top1, top1, plan.max_top1_drop):
            break
    return kept, top1


def _prune(quantized: nn.Module, evaluator: Evaluator, kept: list[str], top1: float, plan: FallbackPlan) -> tuple[list[str], float]:
    """Re-quantize what the budget does not need, least sensitive first; (kept, top-1)."""
    fp32, budget = plan.fp32_top1, plan.max_top1_drop
    if not within(fp32, top1, budget) or len(kept) <= 1:
        return kept, top1
    for layer in reversed(kept[:-1]):
        ptq.enable_layers(quantized, [layer])
        trial = evaluator.measure(quantized).top1
        if within(fp32, trial, budget):
            kept.remove(layer)
            top1 = trial
            plan.steps.append({"action": "requantize", "layer": layer, "top1": round(trial, 4)})
            log.info(f"precision fallback: {layer} not needed, back to INT8 -> {trial:.2f}%")
        else:
            ptq.disable_layers(quantized, [layer])
    return kept, top1


# ------------------------------------------------------------------------------- compile integration


def plan_for_compile(model: nn.Module, calibration: CalibrationData, loader: Iterable, max_top1_drop: float,
                     quantization: QuantOptions, device: torch.device | str = "cpu") -> FallbackPlan:
    """``compile --max-top1-drop``: plan on the compile's own calibration and validation images, with the
    calibration method and quantizer options the backend will use; ``CheckFailed`` when no plan meets
    the budget. ``calibration`` is the compile's ``CalibrationData`` (its ``method`` is used)."""
    ptq_config = ptq.PTQConfig(
        method=calibration.method,
        per_channel_weights=quantization.per_channel_weights,
        quantize_residual=quantization.quantize_residual,
    )
    plan = plan_fallback(model, calibration, EvalSet.from_loader(loader), max_top1_drop, ptq_config, device)
    if not plan.within_budget:
        raise CheckFailed(
            f"--max-top1-drop {max_top1_drop:g}: even with every layer in float the simulated top-1 drop is "
            f"{plan.final_drop:.2f} points on {plan.num_images} images; relax the budget or check the weights"
        )
    return plan


def keep_in_float(plan: FallbackPlan, quantization: QuantOptions) -> QuantOptions:
    """``quantization`` with the plan's layers added to ``keep_float`` (a new object; order kept)."""
    if not plan.layers:
        return quantization
    return dataclasses.replace(quantization, keep_float=tuple(dict.fromkeys([*quantization.keep_float, *plan.layers])))


def record_in_manifest(plan: FallbackPlan, manifest: dict, backend_name: str) -> None:
    """After the build: check the backend kept the planned layers in float, and record the plan as
    ``quantization.fallback``; a ``CheckFailed`` when the backend could not honour it."""
    quantization = manifest.get("quantization") or {}
    kept = set(quantization.get("higher_precision_layers") or [])
    missing = [layer for layer in plan.layers if layer not in kept]
    if missing:
        raise CheckFailed(
            f"--max-top1-drop needs {', '.join(missing)} in higher precision, but the {backend_name} backend cannot keep "
            f"single layers out of INT8; build with --backend tensorrt, or relax --max-top1-drop "
            f"(plain INT8 drops {plan.int8_drop:.2f} points in simulation)"
        )
    quantization["fallback"] = plan.manifest()
    manifest["quantization"] = quantization


def check_budget(plan: FallbackPlan, accuracy: dict) -> None:
    """After measuring the built bundle: its simulated top-1 (the artifact's own scales; its measured
    top-1 when the backend has no simulator) must be within the budget, or the build fails."""
    measured = accuracy.get("simulated_top1")
    what = "simulated INT8"
    if measured is None:
        measured, what = accuracy.get("top1"), "measured"
    if measured is None:
        return
    drop = accuracy["fp32_top1"] - measured
    if drop > plan.max_top1_drop + EPSILON:
        raise CheckFailed(
            f"--max-top1-drop {plan.max_top1_drop:g}: the built bundle's {what} top-1 is {measured:.2f}%, "
            f"{drop:.2f} points below FP32 ({accuracy['fp32_top1']:.2f}%), although the plan kept "
            f"{', '.join(plan.layers) or 'no layer'} in float and simulated {plan.final_top1:.2f}%; "
            f"this backend's quantization differs from the simulation: use --backend tensorrt or a looser budget"
        )
