"""Backends: plug-ins that turn an FP32 ResNet into a deployable artifact and run it.

The contract (types in ``backends/base.py``)
--------------------------------------------
A backend is a subclass of ``Backend`` with

* ``name`` (the ``--backend`` value), ``precisions`` (subset of fp32/fp16/int8), ``targets`` (subset of
  cpu/datacenter/jetson-orin/jetson-xavier), ``can_fuse`` (whether it can hold ``resnet_edge::`` ops);
* ``available() -> (bool, reason)``: cheap, imports nothing heavy when the answer is no, never raises;
* ``check_config(config)``: raise ``UsageError`` (one sentence saying what to do) for a build it cannot do
  here, e.g. FP16 TorchScript without a GPU. Called before any work, so a refused build costs nothing;
* ``build(model, config, out_dir) -> BuildResult``: ``model`` is the FP32 reference (eval mode, CPU,
  unfused; fuse/fold/quantize a copy, never it). Write files only under ``out_dir`` (a private
  temporary directory; ``compile`` renames it into place or deletes it, so never clean up yourself).
  Return ``BuildResult(artifacts={"model": "model.onnx", ...}, manifest={...})``: the artifact
  roles, plus extra manifest fields. Fields a backend may set: ``quantization`` (INT8: tool, format,
  per_channel_weights, placement, higher_precision_layers...), ``requires`` (what the loading host
  must have: ``{"device": "cpu"|"cuda"|"any", "gpu": {"name", "compute_capability"} | null,
  "tensorrt": version | null, "fused_ops": bool}``; ``bundle.load`` enforces it), and one section
  named after the backend for anything else (``"onnxruntime": {...}``). INT8 builds get
  ``config.calibration`` (real, preprocessed images; ``compile`` refuses INT8 without them) and must
  use exactly its ``method`` and ``config.quantization`` (``QuantOptions``); report progress with
  ``logging.getLogger(__name__)``;
* ``options_type``: a frozen dataclass subclassing ``BackendOptions`` with the backend's own settings
  (``TensorRTOptions``: workspace_mb, dla_core, formats, optimization_level); ``make_options`` builds
  it from command-line values and ``Backend.options_of(config)`` reads it back inside the backend;
* ``load(bundle_dir, manifest, device) -> Predictor``: a callable taking an NCHW float32 batch whose
  size lies in ``manifest["input"]["batch"]`` and returning float32 logits on the CPU, with
  ``.device`` (where it runs) and ``.module`` (the torch module it runs, or None).
  ``bundle.Bundle.predict`` pads/splits batches to fit, so a predictor never sees other sizes;
* ``simulator(bundle_dir, manifest) -> Predictor | None`` (optional): INT8 fake quantization on the CPU
  with exactly the artifact's scales, used to report ``quantization.simulated_top1``.

Adding a backend (OpenVINO...) touches one new module and one line of ``_REGISTRY`` below.
Nothing else in the package names a backend: ``compile``, ``bundle.load``, validate and bench go
through ``get_backend``.
"""

from __future__ import annotations

from ..core.defaults import CALIBRATION_METHODS, PRECISIONS, TARGETS
from .base import (
    Backend,
    BackendOptions,
    BatchSpec,
    BuildConfig,
    BuildResult,
    CalibrationData,
    CallablePredictor,
    Predictor,
    QuantOptions,
)
from .auto import AutoBackend, auto_cpu_backend
from .registry import BACKEND_CHOICES, backend_availability, choose_backend, get_backend, list_backends, make_options

__all__ = [
    "AutoBackend",
    "BACKEND_CHOICES",
    "CALIBRATION_METHODS",
    "PRECISIONS",
    "TARGETS",
    "Backend",
    "BackendOptions",
    "BatchSpec",
    "BuildConfig",
    "BuildResult",
    "CalibrationData",
    "CallablePredictor",
    "Predictor",
    "QuantOptions",
    "auto_cpu_backend",
    "backend_availability",
    "choose_backend",
    "get_backend",
    "list_backends",
    "make_options",
]
