"""``export-config``: serving configs written from a bundle's manifest (Triton, DeepStream).

``export_config(ExportOptions(bundle=..., triton=DIR))`` writes ``DIR/NAME/config.pbtxt``,
``DIR/NAME/1/model.*`` and ``DIR/NAME/labels.txt``; ``deepstream=DIR`` writes an nvinfer config,
``labels.txt`` and the model into ``DIR``. Each directory is built beside its destination and renamed
into place whole. With ``data``, the top-1 cost of nvinfer's preprocessing is measured (``parity``).
"""

from __future__ import annotations

import logging
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ... import bundle as bundles
from ...core.errors import UsageError, require_at_least_one
from ...core.io import replace_dir, staging_dir
from .deepstream import CONFIG_NAME, DeepStreamConfig, ScaleChoice, choose_scale, deepstream_config
from .parity import ParityResult, measure_parity
from .triton import TritonEntry, triton_entry

log = logging.getLogger(__name__)

__all__ = ["ExportOptions", "ExportResult", "ScaleChoice", "choose_scale", "deepstream_config", "export_config", "triton_entry"]


@dataclass
class ExportOptions:
    """What ``export-config`` was asked for."""

    bundle: Path
    triton: Path | None = None
    deepstream: Path | None = None
    name: str | None = None
    instances: int = 1
    force: bool = False
    data: str | None = None
    images: int = 256
    scale_rule: str = "minimax"
    scaling_filter: str = "bilinear"


@dataclass
class ExportResult:
    """What was written, and the measurements."""

    triton: TritonEntry | None = None
    deepstream: DeepStreamConfig | None = None
    parity: ParityResult | None = None
    written: dict[str, Path] = field(default_factory=dict)


def _model_name(options: ExportOptions) -> str:
    name = options.name or Path(options.bundle).expanduser().resolve().name
    clean = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
    if not clean or clean.startswith("."):
        raise UsageError(f"{name!r} is not a usable Triton model name; pass --name")
    return clean


def _write_dir(out: Path, source: Path, files: dict[str, str], texts: dict[str, str], force: bool) -> Path:
    """Build ``out`` from bundle files and texts in a staging directory, then rename it into place."""
    out = Path(out).expanduser()
    if out.exists() and not force and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"{out} exists; pass --force to replace it")
    for name in files.values():
        if not (source / name).is_file():
            raise UsageError(f"bundle {source} lacks {name}")
    with staging_dir(out) as tmp:
        for target, name in files.items():
            (tmp / target).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / name, tmp / target)
        for target, text in texts.items():
            (tmp / target).write_text(text)
        replace_dir(tmp, out, replace=force)
    return out


def _check(options: ExportOptions) -> None:
    if options.triton is None and options.deepstream is None:
        raise UsageError("nothing to export: pass --triton DIR and/or --deepstream DIR")
    require_at_least_one({"--instances": options.instances}, show_value=False)
    if options.data and options.deepstream is None:
        raise UsageError("--data measures nvinfer's preprocessing: pass it with --deepstream")


def export_config(options: ExportOptions) -> ExportResult:
    """Write the requested serving configs for a bundle; returns what was written and measured."""
    _check(options)
    path = Path(options.bundle).expanduser()
    manifest = bundles.read_manifest(path)
    bundles.verify_files(path, manifest)
    result = ExportResult()
    if options.triton is not None:
        name = _model_name(options)
        repository = Path(options.triton).expanduser()
        entry = triton_entry(manifest, name, options.instances, str(repository))
        out = _write_dir(repository / name, path, entry.files, {"config.pbtxt": entry.text}, options.force)
        result.triton, result.written["triton"] = entry, out
    if options.deepstream is not None:
        config = deepstream_config(manifest, options.scale_rule, options.scaling_filter)
        texts = {CONFIG_NAME: config.text(), "labels.txt": config.labels}
        out = _write_dir(Path(options.deepstream), path, config.files, texts, options.force)
        result.deepstream, result.written["deepstream"] = config, out / CONFIG_NAME
        if options.data:
            loaded = bundles.load(path)
            result.parity = measure_parity(loaded, options.data, options.images, config.scale, options.scaling_filter)
    return result
