"""The bundle manifest ``compile`` writes: its own fields, the backend's, and the calibration-set copy."""

from __future__ import annotations

import json
import math
from pathlib import Path

from ...backends import Backend, BuildConfig, BuildResult
from ...core import hostinfo
from ...core.io import file_sha256, write_atomic
from ...quantize.calibration import PreparedCalibration
from ...weights import LoadedWeights

CALIBRATION_SET_FILE = "calibration-set.json"
AUTO_FIELD = "calibration_auto"  # quantization.<this> -> calibration.auto
# Fields only compile sets: a backend's ``BuildResult.manifest`` may not override them.
RESERVED_FIELDS = ("schema_version", "arch", "classes", "num_classes", "files", "artifacts", "backend", "precision", "reference")


def write_calibration_set(directory: Path, calibration: PreparedCalibration) -> str:
    """Copy the calibration-set manifest into the bundle (its hash unchanged); returns the file name."""
    write_atomic(directory / CALIBRATION_SET_FILE, json.dumps(calibration.set_manifest, indent=1, ensure_ascii=False) + "\n")
    return CALIBRATION_SET_FILE


def reference_section(loaded: LoadedWeights) -> dict:
    """The ``reference`` section: the FP32 weights the bundle was built from."""
    weights = loaded.path
    reference = {
        "weights": str(Path(weights).expanduser().absolute()) if weights else None,
        "sha256": loaded.sha256 or (file_sha256(weights) if weights else None),
        "source": loaded.source,
        "random_weights": loaded.source == "random",
        "top1": None,
    }
    recorded = loaded.metadata.get("val_acc1") if loaded.metadata else None
    if isinstance(recorded, (int, float)) and math.isfinite(recorded):
        reference["checkpoint_top1"] = recorded
    return reference


def base_manifest(loaded: LoadedWeights, backend: Backend, config: BuildConfig, artifacts: dict,
                  calibration: PreparedCalibration | None) -> dict:
    """Every field compile itself sets (``check``, ``accuracy`` and ``build`` come later)."""
    classes = list(loaded.classes)
    return {
        "arch": config.arch,
        "shortcut": getattr(loaded.model, "shortcut", None),
        "num_classes": len(classes),
        "classes": classes,
        "preprocessing": loaded.preprocessing.to_dict(),
        "input": {
            "name": config.input_name,
            "dtype": "float32",
            "shape": [config.batch.opt, *config.input_shape],
            "batch": config.batch.to_dict(),
        },
        "output": {"name": config.output_name, "dtype": "float32", "shape": [config.batch.opt, len(classes)]},
        "precision": config.precision,
        "backend": backend.name,
        "target": config.target,
        "fused": bool(config.fused),
        "artifacts": artifacts,
        "build_host": hostinfo.host_facts(),
        "calibration": calibration.manifest if calibration is not None else None,
        "quantization": None,
        "reference": reference_section(loaded),
        "requires": {"device": "any", "gpu": None, "tensorrt": None, "fused_ops": bool(config.fused)},
        "accuracy": None,
    }


def merge_backend_fields(manifest: dict, result: BuildResult, backend: Backend) -> dict:
    """Add the backend's extra manifest fields; it may extend ``quantization`` but not override compile's fields.

    What ``--calib-method auto`` measured reaches compile as ``quantization.calibration_auto`` (the
    quantization step of every backend reports it there) and is filed as ``calibration.auto``.
    """
    for key, value in result.manifest.items():
        if key in RESERVED_FIELDS:
            raise RuntimeError(f"backend {backend.name} may not set manifest field {key!r}")
        if key == "quantization" and manifest.get("quantization"):
            manifest["quantization"].update(value)
        else:
            manifest[key] = value
    auto = (manifest.get("quantization") or {}).pop(AUTO_FIELD, None)
    if auto is not None and manifest.get("calibration") is not None:
        manifest["calibration"]["auto"] = auto
    return manifest
