"""The validate report as data: its schema, the threshold checks and the report dict.

The JSON report's schema is documented in ``docs/validate-report.md``; its keys are stable.
Rendering it (table, JUnit XML) is ``resnet_edge.reports.validate``'s job.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import torch

from ... import __version__
from ...bundle import MANIFEST_NAME, Bundle
from ...core.io import file_sha256
from ...data import DataSource

REPORT_SCHEMA = "resnet-edge-validate-report"
REPORT_VERSION = 1

# The metrics copied into the report as they are, in the report's key order.
_COPIED = (
    "topk", "top1_drop", "agreement", "logit_mean_abs_err", "logit_max_abs_err", "cosine", "cosine_min",
    "kl", "kl_max", "nonfinite_images", "largest_class_drops", "per_class",
)


def fmt(value, spec: str, suffix: str = "") -> str:
    """``value`` formatted with ``spec``, or ``n/a`` when it was not measurable (None)."""
    return "n/a" if value is None else f"{value:{spec}}{suffix}"


def make_check(name: str, value, limit, op: str, text: str) -> dict:
    """One check of the report: ``value op limit`` (``<=`` or ``>=``); a None value is skipped, not failed."""
    if value is None:
        return {"name": name, "value": None, "limit": limit, "op": op, "passed": None, "message": f"{text}: not measurable, skipped"}
    passed = value <= limit + 1e-9 if op == "<=" else value >= limit - 1e-9
    return {"name": name, "value": value, "limit": round(limit, 6), "op": op, "passed": bool(passed), "message": text}


def threshold_checks(metrics: dict, max_top1_drop: float, min_agreement: float) -> list[dict]:
    """The three checks every run makes: top-1 drop, top-1 agreement, finite outputs."""
    return [
        make_check("top1_drop", metrics["top1_drop"], max_top1_drop, "<=",
                   f"top-1 drop {fmt(metrics['top1_drop'], '.2f')} pts (max {max_top1_drop:g})"),
        make_check("agreement", metrics["agreement"], min_agreement, ">=",
                   f"top-1 agreement {fmt(metrics['agreement'], '.4f')} (min {min_agreement:g})"),
        make_check("finite_outputs", metrics["nonfinite_images"], 0, "<=",
                   f"{metrics['nonfinite_images']} images with NaN or infinite logits"),
    ]


def build_report(options, loaded_bundle: Bundle, source: DataSource, metrics: dict, reference_info: dict,
                 ref_device: torch.device, load_device: str) -> dict:
    """The report's measured part (``checks``, ``passed``, ``baseline``, ``host`` are added by the run)."""
    manifest = loaded_bundle.manifest
    quantization = manifest.get("quantization") or {}
    bundle_path = Path(options.bundle).expanduser().absolute()
    return {
        "schema": REPORT_SCHEMA,
        "schema_version": REPORT_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "resnet_edge": __version__,
        "command": options.command,
        "bundle": {
            "path": str(bundle_path),
            "manifest_sha256": file_sha256(bundle_path / MANIFEST_NAME),
            "created": manifest.get("created"),
            "arch": manifest["arch"],
            "precision": manifest["precision"],
            "backend": manifest["backend"],
            "target": manifest["target"],
            "device": load_device,
            "higher_precision_layers": quantization.get("higher_precision_layers"),
            "manifest_top1": (manifest.get("accuracy") or {}).get("top1"),
        },
        "data": {"spec": options.data, "split": "val", "kind": source.kind, "labelled": metrics["labelled"], "limit": options.limit},
        "num_images": metrics["num_images"],
        "reference": {**metrics["reference"], **reference_info, "device": str(ref_device)},
        "compiled": dict(metrics["compiled"]),
        **{key: metrics[key] for key in _COPIED},
        "thresholds": {
            "max_top1_drop": options.max_top1_drop,
            "min_agreement": options.min_agreement,
            "baseline_tolerance": options.baseline_tolerance if options.baseline is not None else None,
        },
    }
