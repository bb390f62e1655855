"""What ``compile`` is asked to do (``CompileOptions``), what it returns (``CompileResult``), and the
checks on the options alone that refuse a build before anything is loaded."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from ...core import defaults
from ...core.errors import UsageError, require_at_least_one


@dataclass
class CompileOptions:
    """The ``compile`` command's options, as plain values (the CLI fills this in)."""

    arch: str
    out: Path
    precision: str = "fp32"
    weights: Path | None = None
    random_weights: bool = False
    calib_data: str | None = None
    calib_set: Path | None = None
    calib_images: int | None = None
    calib_method: str = defaults.CALIB_METHOD
    calib_seed: int = defaults.CALIB_SEED
    backend: str = defaults.BACKEND
    target: str | None = None  # None: the backend's natural target for this host
    batch: int | None = None
    dynamic_batch: str | None = None
    dla_core: int | None = None
    workspace_mb: int | None = None
    tf32: bool | None = None  # TensorRT FP32: allow TF32 (None: not given)
    hardware_compatible: bool | None = None  # TensorRT: Ampere+ hardware-compatible engine (None: not given)
    min_dla_fraction: float | None = None  # TensorRT --dla-core: least share of convolutions on the DLA (None: 0.9)
    fused: bool | None = None  # None: the backend's default
    force: bool = False
    val_data: str | None = None
    val_images: int | None = None
    max_top1_drop: float | None = None  # INT8: keep sensitive layers in float until within this (points)
    class_map: Path | None = None  # --class-map: --val-data / calibration class name -> model class name
    by_index: bool = False  # --by-index: match --val-data / calibration labels to the model's by position
    command: str | None = None  # the command line, recorded in the manifest
    # INT8 from stored ranges instead of calibrating (``retarget``): a bundle's calibration-cache.json, and
    # the layers that bundle kept out of INT8. Calibration images, if also given, are then only check inputs.
    ranges_file: Path | None = None
    keep_float: tuple[str, ...] = ()


@dataclass
class CompileResult:
    """The bundle ``compile`` wrote, its manifest, and the warnings logged while building it."""

    path: Path
    manifest: dict
    warnings: list[str] = field(default_factory=list)


def _check_calibration(options: CompileOptions) -> None:
    if options.calib_data and options.calib_set:
        raise UsageError("pass either --calib-data or --calib-set, not both")
    if options.ranges_file is not None and options.precision != "int8":
        raise UsageError(f"stored calibration ranges are for INT8 builds, not {options.precision}")
    if options.ranges_file is not None and options.max_top1_drop is not None:
        raise UsageError("--max-top1-drop calibrates afresh to measure each layer; it cannot use stored ranges")
    if options.precision == "int8" and not (options.calib_data or options.calib_set or options.ranges_file):
        raise UsageError(
            "INT8 needs real calibration images: pass --calib-data SPEC or --calib-set calibration/NAME.json "
            "(random calibration is refused: it gives ranges that fit no real image)"
        )
    require_at_least_one({"--calib-images": options.calib_images}, show_value=False)


def _check_fallback(options: CompileOptions) -> None:
    if options.max_top1_drop is None:
        return
    if options.precision != "int8":
        raise UsageError("--max-top1-drop chooses which layers stay out of INT8; it needs --int8")
    if not options.val_data:
        raise UsageError("--max-top1-drop needs --val-data SPEC: the images the top-1 drop is measured on")
    if not math.isfinite(options.max_top1_drop) or options.max_top1_drop < 0:
        raise UsageError(f"--max-top1-drop is in percentage points and must be >= 0, got {options.max_top1_drop}")


def check_options(options: CompileOptions) -> None:
    """Refuse contradictory or out-of-range options with a ``UsageError`` saying what to pass instead."""
    if options.precision not in defaults.PRECISIONS:
        raise UsageError(f"unknown precision {options.precision!r}; pass {defaults.precision_flags()}")
    _check_calibration(options)
    if options.batch is not None and options.dynamic_batch is not None:
        raise UsageError("pass either --batch N or --dynamic-batch MIN:OPT:MAX, not both")
    require_at_least_one({"--batch": options.batch}, show_value=False)
    if options.target is not None and options.target not in defaults.TARGETS:
        raise UsageError(f"unknown target {options.target!r}; choose one of: {', '.join(defaults.TARGETS)}")
    require_at_least_one({"--val-images": options.val_images}, show_value=False)
    if options.val_images and not options.val_data:
        raise UsageError("--val-images needs --val-data")
    _check_fallback(options)
