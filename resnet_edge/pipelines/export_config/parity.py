"""What nvinfer's preprocessing costs in top-1, measured on images through the bundle's own predictor.

Three inputs per image, all fed to ``Bundle.predict``:
- ``exact``: the manifest's preprocessing (resize the shorter side, centre-crop, ``(x/255 - mean)/std``);
- ``nvinfer-scale``: the same pixels, normalised with nvinfer's equation ``s * (x - offsets)``;
- ``nvinfer``: what nvinfer does to a whole frame: scaled straight to the network size with its
  scaling filter (no antialiasing, no crop, rounded to 8 bits), then its equation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from ...bundle import Bundle
from ...core.errors import require_at_least_one
from ...data.source import open_data
from ...metrics import top1_correct
from .deepstream import ScaleChoice

VARIANTS = ("exact", "nvinfer-scale", "nvinfer")
_FILTERS = {"nearest": F.InterpolationMode.NEAREST, "bilinear": F.InterpolationMode.BILINEAR}


@dataclass
class ParityResult:
    """Per variant: top-1 (percent; None without matching labels) and agreement with ``exact`` (percent)."""

    images: int
    top1: dict[str, float | None]
    agreement: dict[str, float]
    labelled: bool


def _inputs(image, bundle: Bundle, choice: ScaleChoice, scaling_filter: str) -> dict[str, torch.Tensor]:
    pre = bundle.preprocessing
    image = F.to_image(image)[:3] if not isinstance(image, torch.Tensor) else image
    if image.shape[0] == 1:
        image = image.expand(3, -1, -1)
    mean = torch.tensor(pre.mean).view(3, 1, 1)
    std = torch.tensor(pre.std).view(3, 1, 1)
    offsets = torch.tensor(choice.offsets, dtype=torch.float32).view(3, 1, 1)
    cropped = F.center_crop(F.resize(image, pre.resize, interpolation=F.InterpolationMode(pre.interpolation), antialias=True), pre.crop)
    pixels = cropped.float()
    frame = F.resize(image, [pre.crop, pre.crop], interpolation=_FILTERS[scaling_filter], antialias=False).float().round()
    return {
        "exact": (pixels / 255.0 - mean) / std,
        "nvinfer-scale": choice.scale * (pixels - offsets),
        "nvinfer": choice.scale * (frame - offsets),
    }


def measure_parity(bundle: Bundle, spec: str, images: int, choice: ScaleChoice, scaling_filter: str = "bilinear",
                   batch_size: int = 32) -> ParityResult:
    """Top-1 of the exact and nvinfer-style inputs on the first ``images`` validation images of ``spec``."""
    require_at_least_one({"--images": images}, show_value=False)
    source = open_data(spec)
    dataset = source.split("val", transform=v2.Compose([v2.RGB(), v2.PILToTensor()]))
    count = min(images, len(dataset))
    labelled = list(source.classes) == bundle.classes
    correct = dict.fromkeys(VARIANTS, 0)
    agree = dict.fromkeys(VARIANTS, 0)
    for start in range(0, count, batch_size):
        items = [dataset[i] for i in range(start, min(start + batch_size, count))]
        per_image = [_inputs(image, bundle, choice, scaling_filter) for image, _ in items]
        labels = torch.tensor([label for _, label in items])
        predictions = {}
        for variant in VARIANTS:
            logits = bundle.predict(torch.stack([inputs[variant] for inputs in per_image]))
            predictions[variant] = logits.argmax(1)
            correct[variant] += top1_correct(logits, labels) if labelled else 0
        for variant in VARIANTS:
            agree[variant] += int((predictions[variant] == predictions["exact"]).sum())
    top1 = {v: (round(100.0 * correct[v] / count, 2) if labelled else None) for v in VARIANTS}
    return ParityResult(count, top1, {v: round(100.0 * agree[v] / count, 2) for v in VARIANTS}, labelled)
