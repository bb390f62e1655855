"""INT8 TensorRT builds: ModelOpt calibration with explicit Q/DQ (``resnet_edge.quantize.modelopt_ptq``),
the calibrated model saved for the CPU simulator, and the simulator itself."""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ...fuse.fold import fold_batchnorm
from ...fuse.int8 import count_int8_blocks, fuse_quantized_model
from ...models import create_model
from ...quantize import modelopt_ptq
from ..base import BuildConfig, CallablePredictor, Predictor

log = logging.getLogger(__name__)

MODELOPT_FILE = "modelopt_int8.pth"


def _mto():
    """``modelopt.torch.opt`` (optional: INT8 TensorRT builds only)."""
    modelopt_ptq.require_modelopt()
    import modelopt.torch.opt as mto

    return mto


@dataclass
class QuantizedGraph:
    """What the INT8 step hands the compile step: the Q/DQ program and the manifest's ``quantization``."""

    program: torch.export.ExportedProgram
    quantization: dict
    model: nn.Module  # the calibrated fake-quant model (the DLA build exports it to ONNX)


def ptq_config(config: BuildConfig) -> modelopt_ptq.PTQConfig:
    """ModelOpt's settings from the build's calibration method and ``QuantOptions``."""
    quant = config.quantization
    return modelopt_ptq.PTQConfig(
        method=config.calibration.method,
        per_channel_weights=quant.per_channel_weights,
        quantize_residual=quant.quantize_residual,
        keep_fp=tuple(quant.keep_float),
    )


def quantize_and_export(prepared: nn.Module, config: BuildConfig, example: torch.Tensor, out_dir: Path) -> QuantizedGraph:
    """Calibrate ``prepared`` (folded, on the GPU), save it as ``MODELOPT_FILE`` and export the Q/DQ graph.

    With ``--fused`` the calibrated blocks become ``resnet_edge::int8_residual_block`` ops first.
    """
    settings = ptq_config(config)
    calibration = config.calibration
    log.info(f"calibrating INT8 ranges with ModelOpt ({settings.method}) on {calibration.num_images} images")
    started = time.time()
    quantized, choice = modelopt_ptq.calibrate_with_choice(prepared, calibration, settings, device=example.device)
    log.info(f"calibrated {len(modelopt_ptq.quantized_layers(quantized))} layers in {time.time() - started:.1f}s")
    save_quantized(quantized, Path(out_dir) / MODELOPT_FILE)
    quantization = modelopt_ptq.quantization_manifest(quantized, settings, choice=choice)
    if config.fused:
        log.info("fusing calibrated blocks into resnet_edge::int8_residual_block ops (Q/DQ carried)")
        quantized = fuse_quantized_model(quantized)
    batch = config.batch
    program = modelopt_ptq.export_for_tensorrt(quantized, example, None if batch.static else (batch.min, batch.opt, batch.max))
    blocks = f" and {count_int8_blocks(program)} int8_residual_block ops" if config.fused else ""
    log.info(f"exported with {modelopt_ptq.count_qdq_nodes(program)} Q/DQ nodes{blocks}")
    return QuantizedGraph(program, quantization, quantized)


def save_quantized(quantized: nn.Module, path: Path) -> None:
    """Save a calibrated model with ``modelopt.torch.opt.save`` (weights, quantizer state and ranges), from the CPU."""
    mto = _mto()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mto.save(copy.deepcopy(quantized).cpu(), str(path))


def load_simulator(path: Path, manifest: dict) -> Predictor:
    """Restore the calibrated fake-quant model from ``modelopt_int8.pth`` as a CPU predictor."""
    mto = _mto()
    skeleton = fold_batchnorm(create_model(manifest["arch"], num_classes=manifest["num_classes"], shortcut=manifest.get("shortcut")))
    modelopt_ptq.register_residual_quantization()
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        model = mto.restore(skeleton, str(path), map_location="cpu", weights_only=False).eval()

    def predict(batch: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return model(batch.float().cpu()).float()

    return CallablePredictor(predict, torch.device("cpu"), model)
