"""``resnet-edge sensitivity``: check the options, load the model and images, analyze, write the report."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from torch.utils.data import Subset
from tqdm import tqdm

from ...core import defaults, hostinfo
from ...core.device import resolve_device
from ...core.errors import UsageError, require_at_least_one
from ...core.io import check_output_path, write_json
from ...data import eval_transform, open_data
from ...data.classmap import map_classes
from ...quantize import modelopt_ptq as ptq
from ...quantize.calibration import loader, prepare_calibration
from ...quantize.evaluation import EvalSet
from ...weights import resolve_weights
from .analysis import MODES, SensitivityResult, analyze


@dataclass
class SensitivityOptions:
    """The ``sensitivity`` command's options, as plain values (the CLI fills this in)."""

    arch: str
    data: str
    weights: Path | None = None
    calib_data: str | None = None
    calib_set: Path | None = None
    calib_images: int | None = None
    calib_method: str = defaults.CALIB_METHOD
    val_images: int | None = None
    mode: str = defaults.SENSITIVITY_MODE
    top: int | None = None  # rows the table shows; checked here with the other numbers
    layers: tuple[str, ...] = ()
    report: Path | None = None
    device: str = defaults.DEVICE
    command: str | None = None
    progress: bool = True
    class_map: Path | None = None  # --class-map: --data / calibration class name -> model class name
    by_index: bool = False  # --by-index: match labels to the model's classes by position


@dataclass
class SensitivityRun:
    """What ``run_sensitivity`` measured, and the JSON report it wrote (None without ``report``)."""

    result: SensitivityResult
    report: Path | None = None


def _check_options(options: SensitivityOptions) -> None:
    if options.mode not in MODES:
        raise UsageError(f"unknown sensitivity mode {options.mode!r}; choose one of: {', '.join(MODES)}")
    if options.calib_data and options.calib_set:
        raise UsageError("pass either --calib-data or --calib-set, not both")
    if not (options.calib_data or options.calib_set):
        raise UsageError("sensitivity needs real calibration images: pass --calib-data SPEC or --calib-set calibration/NAME.json")
    require_at_least_one({"--calib-images": options.calib_images, "--val-images": options.val_images, "--top": options.top})


def run_sensitivity(options: SensitivityOptions) -> SensitivityRun:
    """``resnet-edge sensitivity``: check, load, calibrate (as ``compile`` draws its calibration set),
    analyze, and write the JSON report when ``options.report`` is set."""
    _check_options(options)
    device = resolve_device(options.device)
    report = check_output_path(options.report, "--report")
    ptq.require_modelopt()
    source = open_data(options.data)
    loaded = resolve_weights(options.arch, options.weights)
    if source.num_classes != len(loaded.classes) and options.class_map is None:
        raise UsageError(f"--data {options.data} has {source.num_classes} classes and the model {len(loaded.classes)}; "
                         f"use data with the model's classes")
    matched = map_classes(loaded.classes, source.classes, class_map=options.class_map, by_index=options.by_index, flag=f"--data {options.data}")
    dataset = source.split("val", transform=eval_transform(loaded.preprocessing))
    if options.val_images is not None and options.val_images < len(dataset):
        dataset = Subset(dataset, range(options.val_images))
    dataset = matched.apply(dataset)
    calibration = prepare_calibration(loaded, options.calib_set, options.calib_data, options.calib_images, options.calib_method,
                                      class_map=options.class_map, by_index=options.by_index)
    eval_set = EvalSet.from_loader(loader(dataset, 64))
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with tqdm(unit="layer", desc="sensitivity", disable=None if options.progress else True, file=sys.stderr) as bar:
        result = analyze(
            loaded.model.float().eval(), calibration.data, eval_set, ptq.PTQConfig(method=options.calib_method), options.mode,
            device, progress=lambda _: bar.update(1), layers=list(options.layers) or None,
        )
    if report is None:
        return SensitivityRun(result)
    payload = {
        **result.to_dict(),
        "created": started,
        "command": options.command,
        "arch": options.arch,
        "weights": str(Path(options.weights).expanduser().absolute()) if options.weights else None,
        "weights_source": loaded.source,
        "data": {"spec": options.data, "split": "val", "num_images": eval_set.num_images},
        "calibration": calibration.manifest,
        "device": str(device),
        "host": hostinfo.host_facts(),
    }
    return SensitivityRun(result, write_json(report, payload))
