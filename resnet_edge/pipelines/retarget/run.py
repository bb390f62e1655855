"""``resnet-edge retarget``: rebuild a bundle for another target or backend without recalibrating.

The new bundle is built by the sequence ``compile`` runs (``bundling.build_bundle``) from what the parent recorded:

* the FP32 reference weights (``manifest.reference``: path and sha256; ``--reference`` when they
  moved) — refused when missing or when their sha256 differs, since anything else is another model;
* for INT8, the parent's stored activation ranges (``calibration-cache.json``, as ``QuantOptions.
  ranges_file``) and the layers it kept in float — no calibration runs, so a retargeted bundle and a
  fresh compile from the same ranges are the same graph. Ranges stored by the CPU (asymmetric) form
  widen to symmetric ones for the TensorRT form (``ort_calibrate.ranges_for_placement``);
* the parent's arch, precision and batch range.

Inside the same atomic build the new artifact's INT8 simulator is compared with the parent's on the
parent's calibration-set images (when they still load here) or seeded random inputs, and the bundle
records where it came from (``retarget``: parent path, the sha256 of its manifest.json, the ranges file).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from ... import bundle as bundle_io
from ...backends import Backend, backend_availability, get_backend
from ...core.errors import CheckFailed, UsageError
from ...core.io import file_sha256
from ...core.logs import collect_warnings
from ...quantize.calibration import PreparedCalibration, prepare_calibration
from ...weights import resolve_weights
from ..bundling import CompileOptions, CompileResult, build_bundle, plan_build
from ..bundling.check import check_inputs

log = logging.getLogger(__name__)

# Same Q/DQ form on both sides: the two simulators run the same graph, so they must agree to rounding.
SAME_FORM_TOLERANCE = 1e-5


@dataclass
class RetargetOptions:
    """The ``retarget`` command's options, as plain values."""

    bundle: Path
    target: str
    out: Path
    backend: str | None = None  # None: the parent's backend
    reference: Path | None = None  # the parent's FP32 weights, when they moved (sha256-checked)
    force: bool = False
    command: str | None = None


@dataclass
class Parent:
    """The bundle being retargeted: where it is, its manifest and that manifest's sha256."""

    path: Path
    manifest: dict
    manifest_sha256: str

    @property
    def ranges_file(self) -> Path | None:
        name = self.manifest["artifacts"].get("calibration_cache")
        return self.path / name if name else None


def read_parent(path: Path) -> Parent:
    """The parent bundle, its files checked against its manifest."""
    path = Path(path).expanduser().absolute()
    manifest = bundle_io.read_manifest(path)
    bundle_io.verify_files(path, manifest)
    return Parent(path, manifest, file_sha256(path / bundle_io.MANIFEST_NAME))


def reference_weights(parent: Parent, override: Path | None) -> Path:
    """The parent's FP32 weights (``override`` when they moved), refused unless their sha256 is the recorded one."""
    reference = parent.manifest["reference"]
    recorded, digest = reference.get("weights"), reference.get("sha256")
    if reference.get("random_weights") or not digest or not (recorded or override):
        raise UsageError(f"bundle {parent.path} records no FP32 reference weights with a sha256 "
                         f"({reference.get('source') or 'unknown source'}); retarget needs them: compile from the weights instead")
    path = Path(override or recorded).expanduser()
    if not path.is_file():
        raise UsageError(f"the FP32 reference weights of {parent.path} ({path}) are missing; pass --reference WEIGHTS where they are now")
    actual = file_sha256(path)
    if actual != digest:
        raise UsageError(f"{path} is not the FP32 reference of {parent.path}: sha256 {actual[:12]}… but the manifest records {digest[:12]}…")
    return path


def stored_ranges(parent: Parent) -> Path | None:
    """For an INT8 parent, its stored ranges file (refused when there is none); None otherwise."""
    if parent.manifest["precision"] != "int8":
        return None
    ranges = parent.ranges_file
    if ranges is None or not ranges.is_file():
        raise UsageError(f"bundle {parent.path} is INT8 but stores no ONNX calibration ranges (calibration-cache.json), "
                         f"so it cannot be rebuilt without recalibrating; compile again with --calib-set")
    return ranges


def check_images(parent: Parent, weights: Path) -> PreparedCalibration | None:
    """The parent's calibration-set images when its copy of the set still loads here (data present,
    every image's sha256 unchanged); else None (random inputs are used), said in a note."""
    name = parent.manifest["artifacts"].get("calibration_set")
    if name is None:
        return None
    calibration = parent.manifest.get("calibration") or {}
    try:
        loaded = resolve_weights(parent.manifest["arch"], weights)
        return prepare_calibration(loaded, calib_set=parent.path / name, calib_images=calibration_images(parent),
                                   method=calibration.get("method", "max"))
    except (UsageError, CheckFailed) as error:
        log.info(f"note: the parent's calibration images do not load here ({error}); checking on random inputs")
        return None


def calibration_images(parent: Parent) -> int | None:
    """How many of the set's images the parent calibrated on."""
    count = (parent.manifest.get("calibration") or {}).get("num_images")
    return count if isinstance(count, int) and count > 0 else None


def compile_options(options: RetargetOptions, parent: Parent, weights: Path, backend: str,
                    calibration: PreparedCalibration | None) -> CompileOptions:
    """What ``compile`` is asked: the parent's model, precision and batch range, for the new target."""
    manifest = parent.manifest
    batch = manifest["input"].get("batch") or {}
    static = batch.get("min") == batch.get("max") and batch.get("min")
    quantization = manifest.get("quantization") or {}
    same_backend = backend == manifest["backend"]
    return CompileOptions(
        arch=manifest["arch"],
        out=options.out,
        precision=manifest["precision"],
        weights=weights,
        backend=backend,
        target=options.target,
        batch=int(batch["min"]) if static else None,
        dynamic_batch=None if static or not batch else f"{batch['min']}:{batch['opt']}:{batch['max']}",
        fused=bool(manifest.get("fused")) if same_backend else None,
        force=options.force,
        calib_set=parent.path / manifest["artifacts"]["calibration_set"] if calibration is not None else None,
        calib_images=calibration_images(parent),
        calib_method=(manifest.get("calibration") or {}).get("method", "max"),
        ranges_file=stored_ranges(parent),
        keep_float=tuple(quantization.get("higher_precision_layers") or ()),
        command=options.command,
    )


def _simulator(backend: Backend, path: Path, manifest: dict):
    """``backend``'s INT8 simulator of the bundle at ``path`` as a batch-fitting function, or None."""
    predictor = backend.simulator(path, manifest)
    return bundle_io.Bundle(path, manifest, backend, predictor).predict if predictor is not None else None


def _placement(manifest: dict) -> str | None:
    return (manifest.get("quantization") or {}).get("placement")


def simulator_check(parent: Parent, new_dir: Path, manifest: dict, backend: Backend, inputs: torch.Tensor, source: str) -> dict | None:
    """The new artifact's simulator vs the parent's on ``inputs``: |diff| of logits and top-1 agreement.

    None for float bundles. With the same Q/DQ form on both sides the simulators must agree to
    rounding (``SAME_FORM_TOLERANCE``); otherwise the difference is what changing form costs.
    """
    if manifest["precision"] != "int8":
        return None
    parent_name = parent.manifest["backend"]
    parent_backend = get_backend(parent_name) if backend_availability(parent_name)[0] else None
    parent_run = _simulator(parent_backend, parent.path, parent.manifest) if parent_backend is not None else None
    new_run = _simulator(backend, new_dir, manifest)
    if parent_run is None or new_run is None:
        missing = "the parent's" if parent_run is None else "the new bundle's"
        log.info(f"note: {missing} INT8 simulator is not available here; simulators not compared")
        return {"compared": False, "reason": f"{missing} simulator is not available"}
    expected, actual = parent_run(inputs), new_run(inputs)
    if not torch.isfinite(actual).all():
        raise CheckFailed("the retargeted artifact's simulator produced NaN or infinite logits; the build is broken")
    diff = (actual - expected).abs()
    scale = expected.abs().max().clamp(min=1e-12)
    same_form = _placement(parent.manifest) == _placement(manifest)
    check = {
        "compared": True,
        "images": int(inputs.shape[0]),
        "inputs": source,
        "same_form": same_form,
        "max_abs_diff": round(float(diff.max()), 6),
        "max_rel_diff": round(float(diff.max() / scale), 6),
        "top1_agreement": round(float((actual.argmax(1) == expected.argmax(1)).float().mean()) * 100, 2),
    }
    log.info(f"simulator vs the parent's on {check['images']} {source} images: top-1 agreement {check['top1_agreement']}%, "
             f"max |diff| {check['max_abs_diff']:.4g} ({'same' if same_form else 'another'} Q/DQ form)")
    if same_form and check["max_rel_diff"] > SAME_FORM_TOLERANCE:
        raise CheckFailed(f"the retargeted artifact's simulator disagrees with the parent's (max relative diff {check['max_rel_diff']}) "
                          f"although both use the same Q/DQ form; this is a bug, please report it")
    return check


def retarget_bundle(options: RetargetOptions) -> CompileResult:
    """Rebuild ``options.bundle`` for ``options.target`` (and ``options.backend``) at ``options.out``."""
    with collect_warnings() as warnings:
        parent = read_parent(options.bundle)
        if Path(options.out).expanduser().absolute() == parent.path:
            raise UsageError(f"--out {options.out} is the bundle being retargeted; choose another directory")
        weights = reference_weights(parent, options.reference)
        backend = options.backend or parent.manifest["backend"]
        # Backend, target and ranges refused before any image is loaded (compile plans again, the same way).
        plan_build(compile_options(options, parent, weights, backend, None))
        calibration = check_images(parent, weights)
        compile_opts = compile_options(options, parent, weights, backend, calibration)
        log.info(f"retargeting {parent.path.name} ({parent.manifest['backend']} {parent.manifest['target']}) "
                 f"to {backend} {options.target}" + (" from its stored ranges, no recalibration" if compile_opts.ranges_file else ""))

        def finish(tmp: Path, manifest: dict, built_with: Backend) -> None:
            images, source = check_inputs(calibration, None, tuple(manifest["input"]["shape"][1:]))
            check = simulator_check(parent, tmp, manifest, built_with, images, source)
            record(manifest, parent, compile_opts, weights, check)

        result = build_bundle(compile_opts, finish=finish, calibration=calibration)  # the set loaded once, here
    return replace(result, warnings=list(warnings))


def record(manifest: dict, parent: Parent, compile_opts: CompileOptions, weights: Path, check: dict | None) -> None:
    """The ``retarget`` section, and the parent's ``calibration`` section (the ranges' origin) carried over."""
    ranges = compile_opts.ranges_file
    manifest["retarget"] = {
        "parent": str(parent.path),
        "parent_manifest_sha256": parent.manifest_sha256,
        "parent_backend": parent.manifest["backend"],
        "parent_target": parent.manifest["target"],
        "ranges_from": {"file": str(ranges), "sha256": file_sha256(ranges)} if ranges is not None else None,
        "reference_weights": str(weights.absolute()),
        "simulator_check": check,
    }
    if parent.manifest.get("calibration") is not None:
        manifest["calibration"] = {**parent.manifest["calibration"], "recalibrated": False}


__all__ = ["Parent", "RetargetOptions", "read_parent", "reference_weights", "retarget_bundle", "simulator_check"]
