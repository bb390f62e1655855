"""The checks a bundle passes before it becomes ``--out``: agreement with the FP32 model on real images
and, with ``--val-data``, top-1 of FP32, the artifact and its INT8 simulation."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from ...core.errors import CheckFailed, UsageError
from ...data import eval_transform, open_data
from ...data.classmap import map_classes
from ...metrics import top1_percent
from ...quantize.calibration import PreparedCalibration, loader
from ...weights import LoadedWeights
from .options import CompileOptions

log = logging.getLogger(__name__)

CHECK_IMAGES = 64
VALIDATION_BATCH = 64


@dataclass
class ValidationData:
    """The ``--val-data`` images and the ``accuracy`` manifest section they start."""

    loader: DataLoader
    info: dict


def logits(model: torch.nn.Module, batch: torch.Tensor) -> torch.Tensor:
    """``model``'s float logits for ``batch``, without autograd."""
    with torch.inference_mode():
        return model(batch).float()


def validation_data(options: CompileOptions, loaded: LoadedWeights) -> ValidationData:
    """``--val-data``'s val split (its first ``--val-images``), checked against the model's classes."""
    source = open_data(options.val_data)
    if len(source.classes) != len(loaded.classes) and options.class_map is None:
        raise UsageError(
            f"--val-data {options.val_data} has {len(source.classes)} classes and the model {len(loaded.classes)}; "
            f"validate on data with the model's classes"
        )
    # Labels are matched by class name (a folder lists them sorted), never silently by position.
    matched = map_classes(loaded.classes, source.classes, class_map=options.class_map, by_index=options.by_index,
                          flag=f"--val-data {options.val_data}")
    dataset = source.split("val", transform=eval_transform(loaded.preprocessing))
    if options.val_images and options.val_images < len(dataset):
        dataset = Subset(dataset, range(options.val_images))
    dataset = matched.apply(dataset)
    return ValidationData(loader(dataset, VALIDATION_BATCH), {"data": options.val_data, "split": "val", "num_images": len(dataset)})


def _first_images(dataset: Dataset, count: int) -> torch.Tensor:
    count = min(count, len(dataset))
    return torch.stack([dataset[i][0] for i in range(count)])


def check_inputs(calibration: PreparedCalibration | None, validation: ValidationData | None,
                 input_shape: tuple[int, int, int]) -> tuple[torch.Tensor, str]:
    """The images the artifact is compared on: validation, else calibration, else seeded noise."""
    if validation is not None:
        return _first_images(validation.loader.dataset, CHECK_IMAGES), "validation"
    if calibration is not None:
        return _first_images(calibration.dataset, CHECK_IMAGES), "calibration"
    generator = torch.Generator().manual_seed(0)
    return torch.randn((8, *input_shape), generator=generator), "random"


def agreement_check(reference: torch.nn.Module, run: Callable, inputs: torch.Tensor, source: str) -> dict:
    """Compare the artifact with the FP32 model on ``inputs``: max/mean |diff| of logits, top-1 agreement."""
    expected = logits(reference, inputs)
    actual = run(inputs)
    if not torch.isfinite(actual).all():
        raise CheckFailed("the compiled model produced NaN or infinite logits; the build is broken (try another precision or calibration method)")
    diff = (actual - expected).abs()
    scale = expected.abs().max().clamp(min=1e-12)
    return {
        "images": int(inputs.shape[0]),
        "inputs": source,
        "max_abs_diff": round(float(diff.max()), 6),
        "mean_abs_diff": round(float(diff.mean()), 6),
        "max_rel_diff": round(float(diff.max() / scale), 6),
        "top1_agreement": round(float((actual.argmax(1) == expected.argmax(1)).float().mean()) * 100, 2),
    }


def check_agreement(model: torch.nn.Module, run: Callable, inputs: torch.Tensor, source: str,
                    precision: str, backend_name: str) -> dict:
    """``agreement_check``, logged; an FP32 artifact that disagrees with PyTorch is a ``CheckFailed``."""
    check = agreement_check(model, run, inputs, source)
    log.info(f"check vs FP32 on {check['images']} {source} images: top-1 agreement {check['top1_agreement']}%, "
             f"max |diff| {check['max_abs_diff']:.4g} (relative {check['max_rel_diff']:.3g})")
    if precision == "fp32" and check["max_rel_diff"] > 1e-3:
        raise CheckFailed(f"the FP32 {backend_name} artifact disagrees with PyTorch (max relative diff {check['max_rel_diff']}); "
                          f"this is a bug, please report it")
    return check


def measure_accuracy(model: torch.nn.Module, run: Callable, simulate: Callable | None, validation: ValidationData) -> dict:
    """The ``accuracy`` section: top-1 of FP32, of the artifact and (when offered) of its INT8 simulation."""
    info = dict(validation.info)
    log.info(f"measuring top-1 on {info['num_images']} images of {info['data']} ({info['split']})")
    info["fp32_top1"] = top1_percent(lambda batch: logits(model, batch), validation.loader)
    info["top1"] = top1_percent(run, validation.loader)
    info["simulated_top1"] = top1_percent(simulate, validation.loader) if simulate is not None else None
    return info
