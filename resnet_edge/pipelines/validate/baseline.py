"""The validate baseline: an earlier report that a later run must not fall below (``--baseline``)."""

from __future__ import annotations

from pathlib import Path

from ...core.errors import UsageError
from ...core.io import read_json_document
from .checks import REPORT_SCHEMA, REPORT_VERSION, make_check


def read_baseline(path: Path) -> dict:
    """An earlier validate report, checked for the fields a comparison needs; a ``UsageError`` otherwise."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UsageError(f"no baseline at {path}; create it with --baseline {path} --update-baseline")
    report = read_json_document(path, lambda error: f"baseline {path} is not valid JSON ({error}); recreate it with --update-baseline")
    if not isinstance(report, dict) or report.get("schema") != REPORT_SCHEMA:
        raise UsageError(f"{path} is not a resnet-edge validate report; recreate it with --update-baseline")
    if report.get("schema_version", 0) > REPORT_VERSION:
        raise UsageError(f"baseline {path} has report schema_version {report.get('schema_version')}, newer than this resnet-edge reads ({REPORT_VERSION})")
    for key in ("num_images", "agreement", "data", "compiled"):
        if key not in report:
            raise UsageError(f"baseline {path} lacks {key!r}; recreate it with --update-baseline")
    return report


def baseline_checks(report: dict, baseline: dict, tolerance: float, path: Path) -> list[dict]:
    """Compiled top-1 and agreement may not fall more than ``tolerance`` points below the baseline's."""
    if baseline["data"].get("spec") != report["data"]["spec"] or baseline["num_images"] != report["num_images"]:
        raise UsageError(
            f"baseline {path} was measured on {baseline['data'].get('spec')} ({baseline['num_images']} images) and this run on "
            f"{report['data']['spec']} ({report['num_images']} images); pass the same --data and --limit, or --update-baseline"
        )
    checks = []
    old_top1, new_top1 = baseline["compiled"].get("top1"), report["compiled"]["top1"]
    if old_top1 is not None and new_top1 is not None:
        checks.append(make_check("baseline_top1", new_top1, old_top1 - tolerance, ">=",
                                 f"compiled top-1 {new_top1:.2f}% vs baseline {old_top1:.2f}% (tolerance {tolerance:g} pts)"))
    old, new = baseline.get("agreement"), report["agreement"]
    if old is not None and new is not None:
        checks.append(make_check("baseline_agreement", new, old - tolerance / 100.0, ">=",
                                 f"agreement {new:.4f} vs baseline {old:.4f} (tolerance {tolerance:g} pts)"))
    return checks


def compared_with(baseline: dict, path: Path) -> dict:
    """The report's ``baseline`` entry for a run compared with ``baseline`` (read from ``path``)."""
    return {
        "path": str(Path(path).expanduser().absolute()),
        "updated": False,
        "compiled_top1": baseline["compiled"].get("top1"),
        "agreement": baseline.get("agreement"),
        "created": baseline.get("created"),
        "bundle": baseline.get("bundle", {}).get("path"),
    }


def updated(path: Path) -> dict:
    """The report's ``baseline`` entry for a run written as the new baseline at ``path``."""
    return {"path": str(Path(path).expanduser().absolute()), "updated": True}
