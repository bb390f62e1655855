"""Backends: plug-ins that turn an FP32 ResNet into a deployable artifact and run it.

One folder per runtime (backend, options, loader, block probe, profiler): ``tensorrt``, ``onnxruntime``,
``openvino``, ``torchscript``, ``aoti``; each registered by one line in ``registry._REGISTRY``. They share
``base`` (the contract types), ``blocks`` (probe type, row charging), ``onnx_graph`` (ONNX export and
scopes), ``common`` (``FloatIO``) and never import each other; ``auto`` resolves ``--backend``.

The 11 hooks of ``base.Backend`` (the rules in full: docs/architecture.md, "The backend contract"):
``available``, ``check_config``, ``build``, ``load`` (required); ``default_fused``, ``options_of``,
``simulator``, ``block_probe``, ``block_probe_reading``, ``foreign_predictor``, ``profile_blocks``
(working defaults). Class attributes: ``name``, ``display_name``, ``precisions``, ``targets``,
``can_fuse``, ``takes_ranges``, ``options_type``, ``default_batch``.
"""

from __future__ import annotations

from ..core.defaults import PRECISIONS, TARGETS
from ..quantize.ranges import CALIBRATION_METHODS
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
from .auto import AutoBackend, Resolution, auto_cpu_backend, resolve_backend
from .registry import BACKEND_CHOICES, backend_availability, get_backend, list_backends, make_options

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
    "Resolution",
    "auto_cpu_backend",
    "backend_availability",
    "get_backend",
    "list_backends",
    "make_options",
    "resolve_backend",
]
