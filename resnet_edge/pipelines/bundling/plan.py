"""The build plan: which backend, for which target, with which batch, device and options.

Decided before anything heavy runs, so a build the backend cannot do here is refused at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from ... import bundle as bundle_io
from ...backends import Backend, BackendOptions, BatchSpec, BuildConfig, QuantOptions, make_options, resolve_backend
from ...backends.base import check_ranges_support
from ...core import hostinfo
from ...core.defaults import HALF_PRECISIONS, TARGETS
from ...models import get_spec
from .options import CompileOptions, check_options

log = logging.getLogger(__name__)


@dataclass
class BuildPlan:
    """Where the bundle goes, the backend that builds it, and the config it builds with."""

    out: Path
    backend: Backend
    config: BuildConfig


def default_target(backend: Backend) -> str:
    """``cpu`` for a backend that runs there; a GPU-only backend: this Jetson module, else a datacenter GPU."""
    if "cpu" not in backend.targets:
        jetson = hostinfo.jetson_model()
        return jetson if jetson in TARGETS else "datacenter"
    return "cpu"


def build_device(backend: Backend, target: str, precision: str) -> str:
    """Where to build: the GPU for GPU targets, FP16 and GPU-only backends (when one is visible)."""
    if not torch.cuda.is_available():
        return "cpu"
    return "cuda" if (target != "cpu" or precision in HALF_PRECISIONS or "cpu" not in backend.targets) else "cpu"


def _batch(options: CompileOptions, backend: Backend | None) -> BatchSpec:
    if options.batch is not None:
        return BatchSpec.fixed(options.batch)
    if options.dynamic_batch is not None:
        return BatchSpec.parse(options.dynamic_batch)
    return (backend or Backend).default_batch


def _config(options: CompileOptions, backend: Backend | None, target: str, fused: bool, device: str) -> BuildConfig:
    """A first config with the arch's default input, before anything is loaded; ``backend`` None: the
    config CPU candidates are checked against (no backend's own options yet)."""
    spec = get_spec(options.arch)
    return BuildConfig(
        arch=options.arch,
        precision=options.precision,
        target=target,
        input_shape=(3, spec.input_size, spec.input_size),
        batch=_batch(options, backend),
        fused=fused,
        device=device,
        quantization=QuantOptions(keep_float=tuple(options.keep_float), ranges_file=options.ranges_file),
        options=BackendOptions() if backend is None else make_options(
            backend, workspace_mb=options.workspace_mb, dla_core=options.dla_core,
            tf32=options.tf32 or None, hardware_compatible=options.hardware_compatible or None,
            min_dla_fraction=options.min_dla_fraction,
        ),
    )


def plan_build(options: CompileOptions) -> BuildPlan:
    """Check the options, the output directory, the backend and its config, in that order."""
    get_spec(options.arch)
    check_options(options)
    out = bundle_io.check_out_dir(Path(options.out), options.force)
    # Measured CPU runtimes build unfused unless --fused asks otherwise (then only those that can hold the ops).
    backend, why, measured_cpu = resolve_backend(options.backend, options.target,
                                                 lambda: _config(options, None, "cpu", bool(options.fused), "cpu"))
    if options.precision != "int8" and (options.calib_data or options.calib_set):
        log.info(f"note: calibration data is only used for --int8; ignored for --{options.precision}")
    log.info(why)
    if measured_cpu:
        config = _config(options, backend, "cpu", bool(options.fused), "cpu")
    else:
        target = options.target or default_target(backend)
        fused = backend.default_fused() if options.fused is None else options.fused
        config = _config(options, backend, target, fused, build_device(backend, target, options.precision))
    backend.check_config(config)
    check_ranges_support(backend, config)  # again: a backend's own check_config may not call the base one
    return BuildPlan(out, backend, config)
