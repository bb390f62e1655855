"""``resnet-edge diagnose``: where along the network a compiled bundle loses accuracy, and why: FP32, the
INT8 simulator and the deployed artifact compared at every residual-block output (SQNR, cosine), where
each series diverges and the verdict. The definitions are in docs/validate-report.md ("diagnose").
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch.utils.data import Subset

from ... import bundle as bundle_io
from ...backends.blocks import module_probe
from ...core import defaults
from ...core.errors import CheckFailed, UsageError, require_at_least_one
from ...core.io import check_output_path, write_atomic, write_json
from ...data import open_data
from ...data.loader import make_loader
from ...models import block_names
from ..reference import load_reference
from .metrics import SeriesStats, divergence, verdict

log = logging.getLogger(__name__)

__all__ = ["DiagnoseOptions", "DiagnoseResult", "diagnose_bundle"]

REPORT_SCHEMA = "resnet-edge-diagnose-report"
BATCH = 32


@dataclass
class DiagnoseOptions:
    """The ``diagnose`` command's options as plain values (the CLI fills this in)."""

    bundle: Path
    data: str
    images: int = defaults.DIAGNOSE_IMAGES
    reference: Path | None = None
    min_sqnr: float = defaults.DIAGNOSE_MIN_SQNR
    max_sqnr_drop: float = defaults.DIAGNOSE_MAX_SQNR_DROP
    report: Path | None = None
    plot: Path | None = None
    device: str = defaults.DEVICE
    command: str | None = None


@dataclass
class DiagnoseResult:
    """Per-block figures (``rows``, in model order), where each series diverges, and the verdict."""

    bundle: dict
    num_images: int
    rows: list[dict] = field(default_factory=list)
    diverged: dict = field(default_factory=dict)  # series -> first diverging block (or None)
    verdict: dict = field(default_factory=dict)  # {"source": quantization|engine|none, "block": ..., "why": ...}
    thresholds: dict = field(default_factory=dict)
    artifact_reading: str = ""  # how the backend read the artifact's block outputs (Backend.block_probe_reading)
    seconds: float = 0.0
    written: dict[str, Path] = field(default_factory=dict)

    def to_dict(self) -> dict:
        payload = asdict(self)
        payload.pop("written")
        return {"schema": REPORT_SCHEMA, "schema_version": 1, **payload}


def _check_options(options: DiagnoseOptions) -> None:
    require_at_least_one({"--images": options.images})
    if not math.isfinite(options.min_sqnr) or not math.isfinite(options.max_sqnr_drop) or options.max_sqnr_drop < 0:
        raise UsageError("--min-sqnr and --max-sqnr-drop must be finite numbers (the drop >= 0)")
    check_output_path(options.report, "--report")
    check_output_path(options.plot, "--plot")


def _probes(loaded: bundle_io.Bundle, blocks: list[str], device: str, reference: torch.nn.Module) -> dict:
    """series name -> probe: the artifact, and (INT8) its simulator. ``reference`` has no hooks yet: a
    backend that rebuilds its artifact from it (TensorRT FP32/FP16) copies it as it is."""
    try:
        artifact = loaded.backend.block_probe(loaded.path, loaded.manifest, blocks, device=device, reference=reference)
    except (UsageError, CheckFailed):
        raise
    except Exception as error:  # the runtime refused the probe graph (TensorRT: building the probe engine)
        text = str(error).strip()
        raise CheckFailed(f"the artifact could not be read with its block outputs exposed ({type(error).__name__}: "
                          f"{text.splitlines()[0][:200] if text else ''})") from None
    if artifact is None:
        raise UsageError(f"the {loaded.backend.name} backend cannot expose block outputs yet; diagnose reads them from "
                         f"onnxruntime, torchscript, openvino and tensorrt bundles")
    probes = {"artifact": artifact}
    simulator = loaded.backend.block_probe(loaded.path, loaded.manifest, blocks, device="cpu", simulated=True)
    if simulator is not None:
        probes["simulator"] = simulator
    return probes


def _measure(options: DiagnoseOptions, loaded: bundle_io.Bundle, reference: torch.nn.Module, blocks: list[str]) -> tuple[dict, int]:
    """Run every series on the images; per-series, per-block statistics against FP32 (and artifact vs simulator)."""
    source = open_data(options.data)
    dataset = source.split("val", transform=loaded.transform())
    if len(dataset) == 0:
        raise UsageError(f"--data {options.data} has no images in its val split")
    dataset = Subset(dataset, range(min(options.images, len(dataset))))
    probes = _probes(loaded, blocks, options.device, reference)
    fp32 = module_probe(reference, blocks)
    stats = {name: SeriesStats(blocks) for name in probes}
    if "simulator" in probes:
        stats["artifact_vs_simulator"] = SeriesStats(blocks)
    for images, _ in make_loader(dataset, batch_size=min(BATCH, loaded.batch.max), workers=0):
        expected = fp32(images)
        outputs = {}
        for name, probe in probes.items():
            try:
                outputs[name] = probe(images)
            except (UsageError, CheckFailed):
                raise
            except Exception as error:  # the runtime raised on the probe graph
                raise CheckFailed(f"the {name} failed to run with its block outputs exposed ({type(error).__name__}: "
                                  f"{str(error).strip().splitlines()[0][:200] if str(error).strip() else ''})") from None
            stats[name].update(expected, outputs[name])
        if "simulator" in outputs:
            stats["artifact_vs_simulator"].update(outputs["simulator"], outputs["artifact"])
    return stats, len(dataset)


def _rows(blocks: list[str], stats: dict) -> list[dict]:
    rows = []
    for index, block in enumerate(blocks):
        row = {"block": block}
        for series, series_stats in stats.items():
            row[f"{series}_sqnr_db"] = series_stats.sqnr(index)
            row[f"{series}_cosine"] = series_stats.cosine(index)
        rows.append(row)
    return rows


def diagnose_bundle(options: DiagnoseOptions, render_plot=None) -> DiagnoseResult:
    """Compare FP32, simulator and artifact at every block output; write ``--report`` (and ``--plot``
    through ``render_plot(result) -> bytes``, the reports layer's renderer, given by the caller)."""
    started = time.time()
    _check_options(options)
    loaded = bundle_io.load(options.bundle, device=options.device)
    reference, _ = load_reference(loaded, options.reference)
    reference = reference.float().eval().cpu()
    blocks = block_names(reference)
    if not blocks:
        raise UsageError(f"{loaded.arch} has no residual blocks to diagnose")
    stats, count = _measure(options, loaded, reference, blocks)
    rows = _rows(blocks, stats)
    diverged = {series: divergence([row[f"{series}_sqnr_db"] for row in rows], blocks, options.min_sqnr, options.max_sqnr_drop)
                for series in stats}
    manifest = loaded.manifest
    result = DiagnoseResult(
        bundle={"path": str(Path(options.bundle).expanduser().absolute()), "arch": manifest["arch"], "precision": manifest["precision"],
                "backend": manifest["backend"], "target": manifest["target"], "data": options.data},
        num_images=count, rows=rows, diverged=diverged, verdict=verdict(diverged, "simulator" in stats),
        thresholds={"min_sqnr_db": options.min_sqnr, "max_sqnr_drop_db": options.max_sqnr_drop},
        artifact_reading=loaded.backend.block_probe_reading(manifest, blocks),
    )
    result.seconds = round(time.time() - started, 2)
    if options.report is not None:
        result.written["report"] = write_json(options.report, result.to_dict())
    if options.plot is not None and render_plot is not None:
        result.written["plot"] = write_atomic(options.plot, render_plot(result.to_dict()))
    return result
