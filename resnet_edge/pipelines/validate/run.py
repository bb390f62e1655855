"""``resnet-edge validate``: is the compiled bundle still as accurate as its FP32 reference?

Runs the FP32 reference (the weights the manifest names, or ``--reference``) and the bundle's artifact
on the same images, preprocessed exactly as the manifest says, batch by batch, and compares them
(``resnet_edge.metrics.ComparisonMeter``). Thresholds decide the exit code: 0 when every check holds,
1 when one fails (the report says which), 2 for usage errors. ``--baseline`` compares with an earlier
report so CI catches a regression between model versions; ``--update-baseline`` writes it.

The JSON report's schema is documented in ``docs/validate-report.md``; its keys are stable. The
report dict is built in ``checks``, the baseline store is ``baseline``, and rendering (the
table, the JUnit XML) is ``resnet_edge.reports.validate``'s.

Order, as everywhere in resnet-edge: every option and output path is checked, the baseline read, the
bundle loaded (hashes, host requirements) and the data opened before any image is run; the report and
the baseline are written atomically (``core.io``).
"""

from __future__ import annotations

import logging
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset, Subset
from tqdm import tqdm

from ... import bundle as bundle_io
from ...core import defaults, hostinfo
from ...core.device import resolve_device
from ...core.errors import CheckFailed, UsageError, require_at_least_one
from ...core.io import check_output_path, write_json
from ...data import DataSource, open_data
from ...data.classmap import map_classes, read_class_map
from ...data.loader import make_loader
from ...metrics import ComparisonMeter
from . import baseline as baseline_store
from ..reference import load_reference
from .checks import REPORT_SCHEMA, REPORT_VERSION, build_report, threshold_checks

log = logging.getLogger(__name__)

__all__ = ["REPORT_SCHEMA", "REPORT_VERSION", "ValidateOptions", "ValidateResult", "validate_bundle"]


@dataclass
class ValidateOptions:
    """The ``validate`` command's options as plain values (the CLI fills this in).

    ``junit`` is checked with the other output paths before any work, but written by the caller
    (``resnet_edge.reports.validate.junit_xml``): rendering is not the pipeline's job.
    """

    bundle: Path
    data: str
    reference: Path | None = None
    max_top1_drop: float = defaults.MAX_TOP1_DROP
    min_agreement: float = defaults.MIN_AGREEMENT
    baseline: Path | None = None
    update_baseline: bool = False
    baseline_tolerance: float = defaults.BASELINE_TOLERANCE
    report: Path | None = None
    junit: Path | None = None
    limit: int | None = None
    batch_size: int = defaults.VALIDATE_BATCH
    workers: int = defaults.VALIDATE_WORKERS
    device: str = defaults.DEVICE
    progress: bool = True
    command: str | None = None
    class_map: Path | None = None  # --class-map FILE: data class name -> bundle class name
    by_index: bool = False  # --by-index: data label i is the bundle's class i


@dataclass
class ValidateResult:
    """The report (``docs/validate-report.md``) and the files the run wrote, by kind."""

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
    require_at_least_one({"--limit": options.limit, "--batch-size": options.batch_size})
    if options.workers < 0:
        raise UsageError(f"--workers cannot be negative, got {options.workers}")
    resolve_device(options.device)  # an unknown device, or cuda without a GPU, is refused here
    if options.class_map is not None:
        read_class_map(options.class_map)  # a missing or malformed --class-map is refused before any work
        if options.by_index:
            raise UsageError("pass either --class-map or --by-index, not both")
    if options.update_baseline and options.baseline is None:
        raise UsageError("--update-baseline needs --baseline FILE (where to write it)")
    check_output_path(options.report, "--report")
    check_output_path(options.junit, "--junit")
    check_output_path(options.baseline, "--baseline")
    if options.baseline is not None and options.report is not None and not options.update_baseline:
        if Path(options.report).expanduser().absolute() == Path(options.baseline).expanduser().absolute():
            raise UsageError("--report and --baseline are the same file; pass --update-baseline to replace the baseline")


def _devices(requested: str, manifest: dict) -> tuple[str, torch.device]:
    """(device for ``bundle.load``, device of the FP32 reference).

    With ``auto`` the backend picks where the bundle runs, and the reference runs on the GPU when
    the bundle was built for one.
    """
    if requested != "auto":
        device = resolve_device(requested)
        return str(device), device
    on_gpu = torch.cuda.is_available() and (manifest.get("target") != "cpu" or (manifest.get("requires") or {}).get("device") == "cuda")
    return "auto", torch.device("cuda" if on_gpu else "cpu")


def _open_dataset(options: ValidateOptions, loaded_bundle: bundle_io.Bundle, labels_ok_if_random: bool) -> tuple[DataSource, Dataset, dict | None]:
    """(the data source, its val split with labels in the bundle's numbering, limited, how the classes
    were matched: None when the labels are not the model's classes, i.e. top-1 is not measured)."""
    source = open_data(options.data)
    classes = list(loaded_bundle.classes)
    mapped = options.class_map is not None
    if source.num_classes != len(classes) and not mapped:
        if not labels_ok_if_random:
            raise UsageError(
                f"--data {options.data} has {source.num_classes} classes and the bundle's model {len(classes)}; "
                f"validate on data with the model's classes"
            )
        log.info(f"note: --data {options.data} has {source.num_classes} classes, the model {len(classes)}: top-1 is not measured, only agreement and output error")
        return source, _limited(options, source.split("val", transform=loaded_bundle.transform())), None
    class_map = map_classes(classes, source.classes, class_map=options.class_map, by_index=options.by_index, flag=f"--data {options.data}")
    return source, class_map.apply(_limited(options, source.split("val", transform=loaded_bundle.transform()))), class_map.to_dict()


def _limited(options: ValidateOptions, dataset: Dataset) -> Dataset:
    """The first ``--limit`` images of ``dataset``; a ``UsageError`` when it is empty."""
    if len(dataset) == 0:
        raise UsageError(f"--data {options.data} has no images in its val split")
    if options.limit is not None and options.limit < len(dataset):
        dataset = Subset(dataset, range(options.limit))
    return dataset


def _compare(options: ValidateOptions, loaded_bundle: bundle_io.Bundle, reference_model: nn.Module, ref_device: torch.device,
             dataset: Dataset, labelled: bool) -> ComparisonMeter:
    """Run both models on every batch and accumulate the comparison."""
    loader = make_loader(dataset, batch_size=options.batch_size, workers=options.workers)
    meter = ComparisonMeter(loaded_bundle.num_classes)
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
    return meter


def _write_outputs(options: ValidateOptions, report: dict) -> dict[str, Path]:
    """The baseline (only for a passing run with ``--update-baseline``) and the JSON report."""
    written: dict[str, Path] = {}
    if options.update_baseline:
        if report["failed"]:
            log.info(f"baseline {options.baseline} not updated: the run failed ({', '.join(report['failed'])})")
        else:
            report["baseline"] = baseline_store.updated(options.baseline)
            written["baseline"] = write_json(options.baseline, report)
    if options.report is not None:
        written["report"] = write_json(options.report, report)
    return written


def validate_bundle(options: ValidateOptions) -> ValidateResult:
    """Run the comparison, apply the thresholds, write the report and baseline; never raises for a
    failed check (``result.passed`` says it; the CLI turns a failure into exit code 1)."""
    started = time.time()
    _check_options(options)
    baseline = None
    if options.baseline is not None and not options.update_baseline:
        baseline = baseline_store.read_baseline(options.baseline)

    load_device, ref_device = _devices(options.device, bundle_io.read_manifest(options.bundle))
    loaded_bundle = bundle_io.load(options.bundle, device=load_device)
    manifest = loaded_bundle.manifest
    reference_model, reference_info = load_reference(loaded_bundle, options.reference)
    reference_model = reference_model.float().eval().to(ref_device)
    source, dataset, matched = _open_dataset(options, loaded_bundle, reference_info["source"] == "random")
    labelled = matched is not None

    log.info(f"validating {options.bundle} ({manifest['arch']} {manifest['precision']} {manifest['backend']}) against FP32 "
             f"on {len(dataset)} images of {options.data}")
    meter = _compare(options, loaded_bundle, reference_model, ref_device, dataset, labelled)

    metrics = meter.summary(loaded_bundle.classes, defaults.WORST_CLASSES)
    report = build_report(options, loaded_bundle, source, metrics, reference_info, ref_device, load_device)
    report["data"]["classes"] = matched  # how the data's labels were matched to the bundle's classes
    checks = threshold_checks(metrics, options.max_top1_drop, options.min_agreement)
    report["baseline"] = None
    if baseline is not None:
        checks += baseline_store.baseline_checks(report, baseline, options.baseline_tolerance, options.baseline)
        report["baseline"] = baseline_store.compared_with(baseline, options.baseline)
    report["checks"] = checks
    report["failed"] = [check["name"] for check in checks if check["passed"] is False]
    report["passed"] = not report["failed"]
    report["seconds"] = round(time.time() - started, 2)
    report["host"] = {**hostinfo.host_facts(), "threads": torch.get_num_threads()}
    return ValidateResult(report, _write_outputs(options, report))
