"""OpenVINO's CPU plugin as every OpenVINO bundle is run: what the CPU can run natively, the compile
config (threads, inference precision, latency hint), the predictor, one-line load errors."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ...core.errors import CheckFailed

# OpenVINO's names for the half types, by the capability the CPU plugin reports for them.
HALF_TYPES = (("FP16", "f16"), ("BF16", "bf16"))


def import_openvino():
    """``openvino`` (optional: the backend is unavailable without it)."""
    import openvino

    return openvino


def cpu_capabilities() -> tuple[str, ...]:
    """What OpenVINO's CPU plugin says this CPU can run natively (``FP32``, ``BF16``, ``INT8``...)."""
    return tuple(import_openvino().Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


def half_type(capabilities: tuple[str, ...]) -> str | None:
    """The half type to infer FP16 bundles in on a CPU with ``capabilities``: ``f16``, ``bf16`` or None."""
    return next((ov_type for capability, ov_type in HALF_TYPES if capability in capabilities), None)


class OvPredictor:
    """A ``Predictor`` running an OpenVINO compiled model on NCHW float32 batches (on the CPU)."""

    module: nn.Module | None = None

    def __init__(self, compiled) -> None:
        self.compiled = compiled
        self.request = compiled.create_infer_request()
        self.device = torch.device("cpu")

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        array = batch.detach().to("cpu", torch.float32).contiguous().numpy()
        self.request.infer({0: array})
        return torch.from_numpy(self.request.get_output_tensor(0).data.copy()).float()


def compile_model(core, model, path: Path, inference_precision: str, **extra_config):
    """``model`` compiled for the CPU as every bundle is run (plus ``extra_config``, e.g. ``PERF_COUNT``);
    a model this OpenVINO cannot compile is a ``CheckFailed`` in one line."""
    ov = import_openvino()
    config = {
        "INFERENCE_NUM_THREADS": torch.get_num_threads(),
        "INFERENCE_PRECISION_HINT": inference_precision,
        "PERFORMANCE_HINT": "LATENCY",
        **extra_config,
    }
    try:
        return core.compile_model(model if model is not None else core.read_model(str(path)), "CPU", config)
    except Exception as error:  # OpenVINO raises RuntimeError with multi-line C++ context
        raise CheckFailed(
            f"OpenVINO {ov.__version__} cannot load {path} ({str(error).strip().splitlines()[0][:200]}); "
            f"rebuild the bundle with this OpenVINO or install the version in its manifest"
        ) from None


def compile_file(path: Path, inference_precision: str = "f32") -> OvPredictor:
    """An ``OvPredictor`` for an IR (``.xml``, its ``.bin`` beside it) or ONNX file, on the CPU."""
    return OvPredictor(compile_model(import_openvino().Core(), None, path, inference_precision))
