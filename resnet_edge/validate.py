"""``resnet-edge validate``: is the compiled bundle still as accurate as its FP32 reference?

Runs the FP32 reference (the weights the manifest names, or ``--reference``) and the bundle's artifact
on the same images, preprocessed exactly as the manifest says, batch by batch, and compares them
(``resnet_edge.metrics.ComparisonMeter``). Thresholds decide the exit code: 0 when every check holds,
1 when one fails (the report says which), 2 for usage errors. ``--baseline`` compares with an earlier
report so CI catches a regression between model versions; ``--update-baseline`` writes it.

The JSON report's schema is documented in ``docs/validate-report.md``; its keys are stable.

Order, as everywhere in resnet-edge: every option and output path is checked, the baseline read, the
bundle loaded (hashes, host requirements) and the data opened before any image is run; reports,
JUnit files and baselines are written atomically (a temporary file renamed into place).
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable
from xml.etree import ElementTree

import torch
from torch.utils.data import Subset

from .data.loader import make_loader
from .core.errors import CheckFailed, UsageError

REPORT_SCHEMA = "resnet-edge-validate-report"
REPORT_VERSION = 1
DEFAULT_MAX_TOP1_DROP = 1.0
DEFAULT_MIN_AGREEMENT = 0.99
DEFAULT_BASELINE_TOLERANCE = 0.5
DEFAULT_BATCH = 32
WORST_CLASSES = 5


# ----------------------------------------------------------------------------------- report files


def check_output_path(path: Path | None, flag: str) -> Path | None:
    """Refuse, before any work, an output path that cannot be written as a file."""
    if path is None:
        return None
    path = Path(path).expanduser()
    if path.is_dir():
        raise UsageError(f"{flag} {path} is a directory; pass a file name")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UsageError(f"{flag} {path}: {parent} is not a directory")
            if not os.access(parent, os.W_OK):
                raise UsageError(f"{flag} {path}: cannot write to {parent}")
            break
    return path


def write_atomic(path: Path, data: bytes | str) -> Path:
    """Write ``data`` to a temporary file beside ``path`` and rename it into place (parents are created)."""
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode() if isinstance(data, str) else data
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(payload)
            stream.flush()
            os.fsync(stream.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def write_json(path: Path, payload: dict) -> Path:
    """``payload`` as indented JSON, atomically."""
    return write_atomic(path, json.dumps(payload, indent=2, default=_json_default) + "\n")


def _json_default(value):
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} to a JSON report")


# ---------------------------------------------------------------------------------------- options


@dataclass
class ValidateOptions:
    """The ``validate`` command's options as plain values (the CLI fills this in)."""

    bundle: Path
    data: str
    reference: Path | None = None
    max_top1_drop: float = DEFAULT_MAX_TOP1_DROP
    min_agreement: float = DEFAULT_MIN_AGREEMENT
    baseline: Path | None = None
    update_baseline: bool = False
    baseline_tolerance: float = DEFAULT_BASELINE_TOLERANCE
    report: Path | None = None
    junit: Path | None = None
    limit: int | None = None
    batch_size: int = DEFAULT_BATCH
    workers: int = 0
    device: str = "auto"
    progress: bool = True
    command: str | None = None


@dataclass
class ValidateResult:
    report: dict
    written: dict[str, Path] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return bool(self.report["passed"])


def _check_options(options: ValidateOptions) -> None:
    def finite(value: float, flag: str) -> None:
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            raise UsageError(f"{flag} must be a number, got {value!r}")

    finite(options.max_top1_drop, "--max-top1-drop")
    finite(options.min_agreement, "--min-agreement")
    finite(options.baseline_tolerance, "--baseline-tolerance")
    if options.max_top1_drop < 0:
        raise UsageError(f"--max-top1-drop is in percentage points and cannot be negative, got {options.max_top1_drop}")
    if not 0.0 <= options.min_agreement <= 1.0:
        raise UsageError(f"--min-agreement is a fraction in [0, 1] (0.99 = 99 %), got {options.min_agreement}")
    if options.baseline_tolerance < 0:
        raise UsageError(f"--baseline-tolerance is in percentage points and cannot be negative, got {options.baseline_tolerance}")
    if options.limit is not None and options.limit < 1:
        raise UsageError(f"--limit must be at least 1, got {options.limit}")
    if options.batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {options.batch_size}")
    if options.workers < 0:
        raise UsageError(f"--workers cannot be negative, got {options.workers}")
    if options.device not in ("auto", "cpu", "cuda") and not str(options.device).startswith("cuda:"):
        raise UsageError(f"unknown device {options.device!r}; use auto, cpu or cuda")
    if str(options.device).startswith("cuda") and not torch.cuda.is_available():
        raise UsageError("--device cuda was asked for, but no CUDA GPU is visible; use --device cpu")
    if options.update_baseline and options.baseline is None:
        raise UsageError("--update-baseline needs --baseline FILE (where to write it)")
    check_output_path(options.report, "--report")
    check_output_path(options.junit, "--junit")
    check_output_path(options.baseline, "--baseline")
    if options.baseline is not None and options.report is not None and not options.update_baseline:
        if Path(options.report).expanduser().absolute() == Path(options.baseline).expanduser().absolute():
            raise UsageError("--report and --baseline are the same file; pass --update-baseline to replace the baseline")


# --------------------------------------------------------------------------------------- baseline


def read_baseline(path: Path) -> dict:
    """An earlier validate report, checked for the fields a comparison needs; a ``UsageError`` otherwise."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UsageError(f"no baseline at {path}; create it with --baseline {path} --update-baseline")
    try:
        report = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UsageError(f"baseline {path} is not valid JSON ({error}); recreate it with --update-baseline") from None
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
        checks.append(_check("baseline_top1", new_top1, old_top1 - tolerance, ">=",
                             f"compiled top-1 {new_top1:.2f}% vs baseline {old_top1:.2f}% (tolerance {tolerance:g} pts)"))
    old, new = baseline.get("agreement"), report["agreement"]
    if old is not None and new is not None:
        checks.append(_check("baseline_agreement", new, old - tolerance / 100.0, ">=",
                             f"agreement {new:.4f} vs baseline {old:.4f} (tolerance {tolerance:g} pts)"))
    return checks


def _check(name: str, value, limit, op: str, text: str) -> dict:
    if value is None:
        return {"name": name, "value": None, "limit": limit, "op": op, "passed": None, "message": f"{text}: not measurable, skipped"}
    passed = value <= limit + 1e-9 if op == "<=" else value >= limit - 1e-9
    return {"name": name, "value": value, "limit": round(limit, 6), "op": op, "passed": bool(passed), "message": text}


# ---------------------------------------------------------------------------------------- running


def _resolve_device(requested: str, manifest: dict) -> tuple[str, torch.device]:
    """(device for ``bundle.load``, device of the FP32 reference)."""
    if requested == "cpu":
        return "cpu", torch.device("cpu")
    if requested.startswith("cuda"):
        return requested, torch.device(requested)
    on_gpu = torch.cuda.is_available() and (manifest.get("target") != "cpu" or (manifest.get("requires") or {}).get("device") == "cuda")
    return "auto", torch.device("cuda" if on_gpu else "cpu")


def load_reference(loaded_bundle, reference: Path | None, log: Callable[[str], None]) -> tuple[torch.nn.Module, dict]:
    """The FP32 reference model and what the report says about it.

    ``--reference`` wins; else the weights the manifest names (sha256 checked). A bundle built with
    ``--random-weights`` has no weights file: its reference is recreated the way ``compile`` made it
    (``compile.resolve_weights`` with the same seed), which only reproduces with the torch that built it.
    """
    manifest = loaded_bundle.manifest
    ref = manifest["reference"]
    if reference is not None:
        from .checkpoint import load_weights

        loaded = load_weights(Path(reference), manifest["arch"], num_classes=loaded_bundle.num_classes)
        if ref.get("sha256") and loaded.sha256 != ref["sha256"]:
            log(f"note: --reference {reference} is not the file the bundle was built from (sha256 differs); comparing with it anyway")
        return loaded.model, {"source": "--reference", "weights": str(Path(reference).expanduser().absolute()), "sha256": loaded.sha256}
    if ref.get("random_weights") or ref.get("source") == "random":
        from .compile import CompileOptions, resolve_weights

        from .core.hostinfo import package_version

        built_with, have = manifest.get("build_host", {}).get("versions", {}).get("torch"), package_version("torch")
        if built_with and built_with != have:
            log(f"warning: the bundle was built with torch {built_with} and random weights; torch {have} may not recreate them")
        log("note: random-weights bundle: its reference is recreated from compile's seed; top-1 means nothing, agreement does")
        with torch.random.fork_rng(devices=[]):
            loaded = resolve_weights(CompileOptions(arch=manifest["arch"], out=Path("."), random_weights=True), lambda _: None)
        return loaded.model, {"source": "random", "weights": None, "sha256": None}
    model = loaded_bundle.load_reference_model()
    return model, {"source": "manifest", "weights": ref.get("weights"), "sha256": ref.get("sha256")}


def _open_dataset(options: ValidateOptions, loaded_bundle, labels_ok_if_random: bool, log: Callable[[str], None]):
    from .data import open_data

    source = open_data(options.data)
    classes = list(loaded_bundle.classes)
    labelled = True
    if source.num_classes != len(classes):
        if not labels_ok_if_random:
            raise UsageError(
                f"--data {options.data} has {source.num_classes} classes and the bundle's model {len(classes)}; "
                f"validate on data with the model's classes"
            )
        labelled = False
        log(f"note: --data {options.data} has {source.num_classes} classes, the model {len(classes)}: top-1 is not measured, only agreement and output error")
    elif list(source.classes) != classes and not all(name.isdigit() for name in classes):
        log("note: --data class names differ from the bundle's; labels are compared by index")
    dataset = source.split("val", transform=loaded_bundle.transform())
    if len(dataset) == 0:
        raise UsageError(f"--data {options.data} has no images in its val split")
    if options.limit is not None and options.limit < len(dataset):
        dataset = Subset(dataset, range(options.limit))
    return source, dataset, labelled


def validate_bundle(options: ValidateOptions, log: Callable[[str], None] | None = None) -> ValidateResult:
    """Run the comparison, apply the thresholds, write the outputs; never raises for a failed check
    (``result.passed`` says it; the CLI turns a failure into exit code 1)."""
    from . import bundle as bundle_io
    from .core import hostinfo
    from .metrics import ComparisonMeter

    say = log or (lambda text: print(text, file=sys.stderr))
    started = time.time()
    _check_options(options)
    baseline = None
    if options.baseline is not None and not options.update_baseline:
        baseline = read_baseline(options.baseline)

    load_device, ref_device = _resolve_device(options.device, bundle_io.read_manifest(options.bundle))
    loaded_bundle = bundle_io.load(options.bundle, device=load_device)
    manifest = loaded_bundle.manifest
    reference_model, reference_info = load_reference(loaded_bundle, options.reference, say)
    reference_model = reference_model.float().eval().to(ref_device)
    source, dataset, labelled = _open_dataset(options, loaded_bundle, reference_info["source"] == "random", say)

    loader = make_loader(dataset, batch_size=options.batch_size, workers=options.workers)
    meter = ComparisonMeter(loaded_bundle.num_classes)
    from tqdm import tqdm

    say(f"validating {options.bundle} ({manifest['arch']} {manifest['precision']} {manifest['backend']}) against FP32 "
        f"on {len(dataset)} images of {options.data}")
    with tqdm(total=len(dataset), unit="img", desc="validate", disable=None if options.progress else True, file=sys.stderr) as bar:
        for images, labels in loader:
            with torch.inference_mode():
                expected = reference_model(images.to(ref_device)).float().cpu()
            try:
                actual = loaded_bundle.predict(images)
            except (UsageError, CheckFailed):
                raise
            except Exception as error:  # the artifact's runtime raised: that is the check failing
                message = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
                raise CheckFailed(f"the bundle failed to run a batch of {len(images)} images ({type(error).__name__}: {message})") from None
            meter.update(expected, actual, labels if labelled else None)
            bar.update(len(images))

    metrics = meter.summary(loaded_bundle.classes, WORST_CLASSES)
    report = _build_report(options, loaded_bundle, source, metrics, reference_info, ref_device, load_device)
    checks = [
        _check("top1_drop", metrics["top1_drop"], options.max_top1_drop, "<=",
               f"top-1 drop {_fmt(metrics['top1_drop'], '.2f')} pts (max {options.max_top1_drop:g})"),
        _check("agreement", metrics["agreement"], options.min_agreement, ">=",
               f"top-1 agreement {_fmt(metrics['agreement'], '.4f')} (min {options.min_agreement:g})"),
        _check("finite_outputs", metrics["nonfinite_images"], 0, "<=",
               f"{metrics['nonfinite_images']} images with NaN or infinite logits"),
    ]
    report["baseline"] = None
    if baseline is not None:
        checks += baseline_checks(report, baseline, options.baseline_tolerance, options.baseline)
        report["baseline"] = {
            "path": str(Path(options.baseline).expanduser().absolute()),
            "updated": False,
            "compiled_top1": baseline["compiled"].get("top1"),
            "agreement": baseline.get("agreement"),
            "created": baseline.get("created"),
            "bundle": baseline.get("bundle", {}).get("path"),
        }
    report["checks"] = checks
    failed = [check["name"] for check in checks if check["passed"] is False]
    report["failed"] = failed
    report["passed"] = not failed
    report["seconds"] = round(time.time() - started, 2)
    report["host"] = {**hostinfo.host_facts(), "threads": torch.get_num_threads()}

    written: dict[str, Path] = {}
    if options.update_baseline:
        if failed:
            say(f"baseline {options.baseline} not updated: the run failed ({', '.join(failed)})")
        else:
            report["baseline"] = {"path": str(Path(options.baseline).expanduser().absolute()), "updated": True}
            written["baseline"] = write_json(options.baseline, report)
    if options.report is not None:
        written["report"] = write_json(options.report, report)
    if options.junit is not None:
        written["junit"] = write_atomic(options.junit, junit_xml(report))
    return ValidateResult(report, written)


def _build_report(options, loaded_bundle, source, metrics: dict, reference_info: dict, ref_device, load_device) -> dict:
    from . import __version__
    from .checkpoint import file_sha256

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
            "manifest_sha256": file_sha256(bundle_path / "manifest.json"),
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
        "topk": metrics["topk"],
        "top1_drop": metrics["top1_drop"],
        "agreement": metrics["agreement"],
        "logit_mean_abs_err": metrics["logit_mean_abs_err"],
        "logit_max_abs_err": metrics["logit_max_abs_err"],
        "cosine": metrics["cosine"],
        "cosine_min": metrics["cosine_min"],
        "kl": metrics["kl"],
        "kl_max": metrics["kl_max"],
        "nonfinite_images": metrics["nonfinite_images"],
        "largest_class_drops": metrics["largest_class_drops"],
        "per_class": metrics["per_class"],
        "thresholds": {
            "max_top1_drop": options.max_top1_drop,
            "min_agreement": options.min_agreement,
            "baseline_tolerance": options.baseline_tolerance if options.baseline is not None else None,
        },
    }


# --------------------------------------------------------------------------------------- printing


def _fmt(value, spec: str, suffix: str = "") -> str:
    return "n/a" if value is None else f"{value:{spec}}{suffix}"


def format_table(report: dict) -> str:
    """The report as a human-readable table (what the CLI prints)."""
    bundle = report["bundle"]
    ref, cmp = report["reference"], report["compiled"]
    lines = [
        f"validate {bundle['path']}",
        f"  {bundle['arch']} {bundle['precision']} {bundle['backend']} (target {bundle['target']}) vs FP32 reference "
        f"({ref['source']}), {report['num_images']} images of {report['data']['spec']} ({report['data']['split']})",
        "",
        f"  {'metric':<30}{'FP32 ref':>12}{'compiled':>12}   check",
    ]
    status = {check["name"]: check for check in report["checks"]}

    def verdict(name: str) -> str:
        check = status.get(name)
        if check is None:
            return ""
        mark = {True: "ok", False: "FAIL", None: "skipped"}[check["passed"]]
        return f"   {mark:<7} ({check['op']} {check['limit']:g})"

    k = report["topk"]
    lines += [
        f"  {'top-1 (%)':<30}{_fmt(ref['top1'], '.2f'):>12}{_fmt(cmp['top1'], '.2f'):>12}",
        f"  {f'top-{k} (%)':<30}{_fmt(ref['top5'], '.2f'):>12}{_fmt(cmp['top5'], '.2f'):>12}",
        f"  {'top-1 drop (points)':<30}{'':>12}{_fmt(report['top1_drop'], '.2f'):>12}{verdict('top1_drop')}",
        f"  {'top-1 agreement':<30}{'':>12}{_fmt(report['agreement'], '.4f'):>12}{verdict('agreement')}",
        f"  {'logit |error| mean':<30}{'':>12}{_fmt(report['logit_mean_abs_err'], '.4g'):>12}",
        f"  {'logit |error| max':<30}{'':>12}{_fmt(report['logit_max_abs_err'], '.4g'):>12}",
        f"  {'cosine similarity mean (min)':<30}{'':>12}{_fmt(report['cosine'], '.5f'):>12}   ({_fmt(report['cosine_min'], '.5f')})",
        f"  {'KL(ref || compiled) mean (max)':<30}{'':>12}{_fmt(report['kl'], '.3g'):>12}   ({_fmt(report['kl_max'], '.3g')} nats)",
        f"  {'non-finite outputs (images)':<30}{'':>12}{report['nonfinite_images']:>12}{verdict('finite_outputs')}",
    ]
    for name, label in (("baseline_top1", "top-1 vs baseline (%)"), ("baseline_agreement", "agreement vs baseline")):
        if name in status:
            check = status[name]
            value = _fmt(check["value"], ".2f" if name == "baseline_top1" else ".4f")
            lines.append(f"  {label:<30}{'':>12}{value:>12}{verdict(name)}")
    if report["largest_class_drops"]:
        worst = ", ".join(
            f"{row['class']} {row['reference_top1']:.1f}->{row['compiled_top1']:.1f}% ({row['images']} img)" for row in report["largest_class_drops"]
        )
        lines.append(f"  largest class drops: {worst}")
    elif report["data"]["labelled"]:
        lines.append("  largest class drops: none (no class lost accuracy)")
    baseline = report.get("baseline")
    if baseline and baseline.get("updated"):
        lines.append(f"  baseline written: {baseline['path']}")
    lines.append("")
    if report["passed"]:
        held = sum(1 for check in report["checks"] if check["passed"])
        skipped = len(report["checks"]) - held
        lines.append(f"PASSED: {held} checks held" + (f", {skipped} not measurable" if skipped else "") + f" ({report['seconds']:.1f} s)")
    else:
        lines.append("FAILED: " + "; ".join(check["message"] for check in report["checks"] if check["passed"] is False))
    return "\n".join(lines)


def failure_message(report: dict) -> str:
    """One line for the CLI's exit-code-1 error."""
    return "validation failed: " + "; ".join(check["message"] for check in report["checks"] if check["passed"] is False)


def junit_xml(report: dict) -> str:
    """The checks as a JUnit XML test suite (one test case per check), for CI systems."""
    name = Path(report["bundle"]["path"]).name
    checks = report["checks"]
    failures = sum(1 for check in checks if check["passed"] is False)
    skipped = sum(1 for check in checks if check["passed"] is None)
    suites = ElementTree.Element("testsuites", name="resnet-edge validate", tests=str(len(checks)), failures=str(failures))
    suite = ElementTree.SubElement(
        suites, "testsuite", name=f"resnet-edge validate {name}", tests=str(len(checks)), failures=str(failures),
        errors="0", skipped=str(skipped), time=f"{report.get('seconds', 0):.3f}", timestamp=report["created"],
    )
    properties = ElementTree.SubElement(suite, "properties")
    for key, value in (
        ("bundle", report["bundle"]["path"]), ("data", report["data"]["spec"]), ("num_images", report["num_images"]),
        ("reference_top1", report["reference"]["top1"]), ("compiled_top1", report["compiled"]["top1"]),
        ("agreement", report["agreement"]),
    ):
        ElementTree.SubElement(properties, "property", name=key, value="" if value is None else str(value))
    for check in checks:
        case = ElementTree.SubElement(suite, "testcase", classname=f"resnet_edge.validate.{name}", name=check["name"], time="0")
        if check["passed"] is False:
            failure = ElementTree.SubElement(case, "failure", message=check["message"], type="threshold")
            failure.text = f"{check['name']} = {check['value']} (must be {check['op']} {check['limit']})"
        elif check["passed"] is None:
            ElementTree.SubElement(case, "skipped", message=check["message"])
    ElementTree.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(suites, encoding="unicode") + "\n"
