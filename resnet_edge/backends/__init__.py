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

import importlib
from dataclasses import fields

from ..core.defaults import CALIBRATION_METHODS, PRECISIONS, TARGETS
from ..core.errors import UsageError
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

# name -> "module:class", imported on first use so that asking about one backend never imports another.
_REGISTRY: dict[str, str] = {
    "tensorrt": "resnet_edge.backends.tensorrt:TensorRTBackend",
    "onnxruntime": "resnet_edge.backends.onnxruntime:OnnxRuntimeBackend",
    "torchscript": "resnet_edge.backends.torchscript:TorchScriptBackend",
    "openvino": "resnet_edge.backends.openvino:OpenVinoBackend",
}

# Backends that are planned but not in this build: name -> what to do instead.
_PLANNED: dict[str, str] = {}

BACKEND_CHOICES = ("auto", *_REGISTRY)

_instances: dict[str, Backend] = {}


def list_backends() -> list[str]:
    """Names of the registered backends."""
    return list(_REGISTRY)


def get_backend(name: str) -> Backend:
    """The backend called ``name``; a ``UsageError`` for an unknown or not-yet-available one."""
    if name in _instances:
        return _instances[name]
    if name not in _REGISTRY:
        if name in _PLANNED:
            raise UsageError(_PLANNED[name])
        raise UsageError(f"unknown backend {name!r}; choose one of: {', '.join(['auto', *_REGISTRY])}")
    backend = _backend_class(name)()
    _instances[name] = backend
    return backend


def _backend_class(name: str) -> type[Backend]:
    module_name, _, class_name = _REGISTRY[name].partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def make_options(backend: Backend, **values) -> BackendOptions:
    """``backend``'s typed options from command-line values (None: not given).

    A value given for an option the backend lacks is refused, naming the backends that have it.
    """
    known = {f.name for f in fields(backend.options_type)}
    for option, value in values.items():
        if value is not None and option not in known:
            owners = [
                cls.display_name or cls.name
                for cls in map(_backend_class, _REGISTRY)
                if option in {f.name for f in fields(cls.options_type)}
            ]
            flag = f"--{option.replace('_', '-')}"
            raise UsageError(f"{flag} applies to {' and '.join(owners) or 'no'} builds only; drop it for the {backend.name} backend")
    return backend.options_type(**{option: value for option, value in values.items() if value is not None})


def backend_availability(name: str) -> tuple[bool, str]:
    """(available, reason) for a registered or planned backend name; never raises for known names."""
    if name not in _REGISTRY:
        return False, _PLANNED.get(name, f"unknown backend {name!r}")
    try:
        return get_backend(name).available()
    except ImportError as error:
        return False, f"cannot import the {name} backend ({error})"


def choose_backend(requested: str) -> tuple[Backend, str]:
    """Resolve ``--backend``: ``auto`` is tensorrt with a CUDA GPU and torch-tensorrt, else onnxruntime.

    Returns (backend, a sentence saying which and why). An unavailable explicit choice is refused.
    """
    if requested == "auto":
        trt_ok, trt_reason = backend_availability("tensorrt")
        if trt_ok:
            return get_backend("tensorrt"), f"backend auto -> tensorrt ({trt_reason})"
        ort_ok, ort_reason = backend_availability("onnxruntime")
        if not ort_ok:
            raise UsageError(f"no backend is usable: tensorrt: {trt_reason}; onnxruntime: {ort_reason}")
        why = trt_reason.split(";")[0]
        return get_backend("onnxruntime"), f"backend auto -> onnxruntime (tensorrt not usable: {why})"
    backend = get_backend(requested)
    ok, reason = backend.available()
    if not ok:
        raise UsageError(f"the {requested} backend is not usable here: {reason}")
    return backend, f"backend {requested} ({reason})"


__all__ = [
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
    "backend_availability",
    "choose_backend",
    "get_backend",
    "list_backends",
    "make_options",
]
