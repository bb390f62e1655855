"""``build_bundle``: weights -> calibration -> plan -> build -> check -> bundle -> report.

The order matters for "checked at the door, nothing half-written": every flag, the output directory,
the backend and its config are checked before anything heavy runs; the weights and calibration images
are checked before the build; the build happens in a private directory that becomes ``--out`` only
when the artifact has been loaded back and compared with the FP32 model.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from torch import nn

from ... import bundle as bundle_io
from ...backends import Backend
from ...core.logs import collect_warnings
from ...quantize.calibration import PreparedCalibration, prepare_calibration
from ...weights import LoadedWeights, resolve_weights
from . import fallback as fallback_plan
from .check import ValidationData, check_agreement, check_inputs, measure_accuracy, validation_data
from .manifest import base_manifest, merge_backend_fields, write_calibration_set
from .options import CompileOptions, CompileResult
from .plan import BuildPlan, plan_build

log = logging.getLogger(__name__)


@dataclass
class Inputs:
    """What the build starts from: the FP32 model and the images it is calibrated and measured on."""

    loaded: LoadedWeights
    model: nn.Module
    calibration: PreparedCalibration | None
    validation: ValidationData | None
    fallback: fallback_plan.FallbackPlan | None


# Called with (staging dir, manifest, backend) after the checks, before the manifest is written: a caller's
# own checks and manifest fields (``retarget``), inside the same atomic build.
Finish = Callable[[Path, dict, Backend], None]


def build_bundle(options: CompileOptions, finish: Finish | None = None, calibration: PreparedCalibration | None = None) -> CompileResult:
    """Build the bundle ``options`` describe at ``options.out``; see the module docstring for the order.

    ``calibration``: the images of ``options.calib_set`` already prepared (retarget's, loaded and
    hash-checked once), used instead of loading the set again."""
    with collect_warnings() as warnings:
        started = time.time()
        plan = plan_build(options)
        inputs = _prepare_inputs(options, plan, calibration)
        with bundle_io.staging(plan.out, options.force) as tmp:
            manifest, build_seconds = _build(options, plan, inputs, tmp)
            _check(options, plan, inputs, tmp, manifest)
            if finish is not None:
                finish(tmp, manifest, plan.backend)
            manifest["build"] = {"seconds": round(time.time() - started, 1), "backend_seconds": build_seconds, "command": options.command}
            written = bundle_io.write_manifest(tmp, manifest)
    return CompileResult(plan.out, written, list(warnings))


def _prepare_inputs(options: CompileOptions, plan: BuildPlan, calibration: PreparedCalibration | None = None) -> Inputs:
    """Weights, calibration and validation images, and the fallback plan; fixes the config's input shape
    and (for ``--max-top1-drop``) the layers kept out of INT8."""
    loaded = resolve_weights(options.arch, options.weights, options.random_weights)
    model = loaded.model.float().cpu().eval()
    config = plan.config
    config.input_shape = (3, loaded.preprocessing.crop, loaded.preprocessing.crop)
    if calibration is not None:
        config.calibration = calibration.data
    elif options.precision == "int8" and (options.calib_set or options.calib_data):
        calibration = prepare_calibration(loaded, options.calib_set, options.calib_data, options.calib_images,
                                          options.calib_method, options.calib_seed,
                                          class_map=options.class_map, by_index=options.by_index)
        config.calibration = calibration.data
    validation = validation_data(options, loaded) if options.val_data else None
    fallback = None
    if options.max_top1_drop is not None:
        fallback = fallback_plan.plan_for_compile(model, calibration.data, validation.loader, options.max_top1_drop,
                                                  config.quantization, config.device)
        plan.config = dataclasses.replace(config, quantization=fallback_plan.keep_in_float(fallback, config.quantization))
    return Inputs(loaded, model, calibration, validation, fallback)


def _build(options: CompileOptions, plan: BuildPlan, inputs: Inputs, tmp: Path) -> tuple[dict, float]:
    """Run the backend into ``tmp``; the manifest (without checks) and the backend's seconds."""
    backend, config = plan.backend, plan.config
    log.info(f"building {options.arch} {options.precision} with {backend.name} for {config.target} in {tmp.name}")
    build_started = time.time()
    result = backend.build(inputs.model, config, tmp)
    build_seconds = round(time.time() - build_started, 1)
    artifacts = dict(result.artifacts)
    if inputs.calibration is not None:
        artifacts["calibration_set"] = write_calibration_set(tmp, inputs.calibration)
    manifest = merge_backend_fields(base_manifest(inputs.loaded, backend, config, artifacts, inputs.calibration), result, backend)
    if inputs.fallback is not None:
        fallback_plan.record_in_manifest(inputs.fallback, manifest, backend.name)
    return manifest, build_seconds


def _check(options: CompileOptions, plan: BuildPlan, inputs: Inputs, tmp: Path, manifest: dict) -> None:
    """Load the artifact back exactly as a consumer will and compare it with the FP32 model; with
    ``--val-data`` measure top-1 (and hold it to ``--max-top1-drop``). Fills ``check`` and ``accuracy``."""
    backend = plan.backend
    bundle_io.check_host(tmp, manifest)
    runner = bundle_io.Bundle(tmp, manifest, backend, backend.load(tmp, manifest, "auto"))
    images, source = check_inputs(inputs.calibration, inputs.validation, plan.config.input_shape)
    manifest["check"] = check_agreement(inputs.model, runner.predict, images, source, options.precision, backend.name)
    if inputs.validation is None:
        return
    simulator = backend.simulator(tmp, manifest)
    simulate = bundle_io.Bundle(tmp, manifest, backend, simulator).predict if simulator is not None else None
    info = measure_accuracy(inputs.model, runner.predict, simulate, inputs.validation)
    if info["simulated_top1"] is not None:
        manifest["quantization"]["simulated_top1"] = info["simulated_top1"]
    manifest["accuracy"] = info
    manifest["reference"]["top1"] = info["fp32_top1"]
    log.info(
        f"top-1: FP32 {info['fp32_top1']:.2f}%, {options.precision} {backend.name} {info['top1']:.2f}%"
        + (f", simulated INT8 (exact scales) {info['simulated_top1']:.2f}%" if info["simulated_top1"] is not None else "")
    )
    if inputs.fallback is not None:
        fallback_plan.check_budget(inputs.fallback, info)
