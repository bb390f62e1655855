"""Preprocessing presets: the one place the resize/crop/mean/std constants live.

A preset is recorded in every checkpoint and bundle manifest (``Preprocessing.to_dict``), so
validate, bench and the C++ app apply exactly what the model was trained with.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torchvision.transforms import v2

from ..core.errors import UsageError


@dataclass(frozen=True)
class Preprocessing:
    """Evaluation preprocessing: resize the shorter side, centre-crop, scale to [0, 1], normalise."""

    name: str
    resize: int
    crop: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bilinear"
    channel_order: str = "RGB"
    layout: str = "NCHW"

    def to_dict(self) -> dict:
        """JSON-ready form, as stored in checkpoints and manifests."""
        return {**asdict(self), "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, data: dict) -> "Preprocessing":
        """Inverse of ``to_dict``."""
        return cls(**{**data, "mean": tuple(data["mean"]), "std": tuple(data["std"])})


PRESETS: dict[str, Preprocessing] = {
    # torchvision's ImageNet evaluation transform (weights' "transforms()").
    "imagenet": Preprocessing("imagenet", 256, 224, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    # CIFAR-10 training-set per-channel statistics; the paper subtracts the per-pixel mean.
    "cifar": Preprocessing("cifar", 32, 32, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
}


def get_preset(name: str) -> Preprocessing:
    """The preset called ``name`` (``imagenet`` or ``cifar``)."""
    try:
        return PRESETS[name]
    except KeyError:
        raise UsageError(f"unknown preprocessing preset {name!r}; choose one of: {', '.join(PRESETS)}") from None


def _to_normalised_tensor(pre: Preprocessing) -> list:
    return [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(pre.mean), list(pre.std))]


def eval_transform(pre: Preprocessing) -> v2.Compose:
    """PIL image -> normalised CHW float tensor, as at test time (resize, centre crop)."""
    return v2.Compose(
        [
            v2.RGB(),
            v2.Resize(pre.resize, interpolation=v2.InterpolationMode(pre.interpolation), antialias=True),
            v2.CenterCrop(pre.crop),
            *_to_normalised_tensor(pre),
        ]
    )


def train_transform(pre: Preprocessing) -> v2.Compose:
    """The paper's training augmentation for the preset's family.

    ImageNet (§3.4): shorter side random in [256, 480], random 224 crop, horizontal flip.
    CIFAR (§4.2): 4-pixel zero padding, random 32 crop, horizontal flip.
    """
    if pre.name == "cifar":
        geometric = [v2.Resize(pre.resize, antialias=True), v2.RandomCrop(pre.crop, padding=4)]
    else:
        low, high = pre.resize, round(pre.resize * 480 / 256)
        geometric = [v2.RandomShortestSize(list(range(low, high + 1)), antialias=True), v2.RandomCrop(pre.crop)]
    return v2.Compose([v2.RGB(), *geometric, v2.RandomHorizontalFlip(), *_to_normalised_tensor(pre)])
