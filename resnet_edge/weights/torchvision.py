"""torchvision's locally cached ImageNet weights, and the one rule for where a model's weights come from.

``resolve_weights``: ``--weights PATH`` (a resnet-edge checkpoint or a torchvision ``state_dict``),
else the checkpoint torchvision keeps in its hub cache for the arch, else, with ``--random-weights``,
a seeded untrained model (for speed measurements only). Nothing is ever downloaded.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torchvision.models import ResNet50_Weights, get_model_weights

from ..core.errors import UsageError
from ..data.presets import Preprocessing, get_preset
from ..models import create_model, get_spec
from .checkpoint import LoadedWeights, load_weights

log = logging.getLogger(__name__)

RANDOM_WEIGHTS_SEED = 0  # validate recreates a --random-weights reference with the same seed


def _members(arch: str) -> list:
    try:
        return list(get_model_weights(arch))
    except (ValueError, KeyError):  # an arch torchvision does not have (the CIFAR nets)
        return []


def _cache_dir() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def torchvision_cached_weights(arch: str):
    """(path, torchvision weights enum member) of a cached torchvision checkpoint for ``arch``, or None."""
    for member in _members(arch):  # IMAGENET1K_V1 first, then V2
        path = _cache_dir() / member.url.rsplit("/", 1)[-1]
        if path.is_file():
            return path, member
    return None


def _imagenet_categories() -> list[str]:
    return list(ResNet50_Weights.IMAGENET1K_V1.meta["categories"])


def _torchvision_preprocessing(member) -> Preprocessing:
    transforms = member.transforms()
    return Preprocessing(
        name=f"torchvision-{member.name}",
        resize=int(transforms.resize_size[0]),
        crop=int(transforms.crop_size[0]),
        mean=tuple(float(v) for v in transforms.mean),
        std=tuple(float(v) for v in transforms.std),
        interpolation=transforms.interpolation.value,
    )


def untrained_weights(arch: str) -> LoadedWeights:
    """A seeded, untrained ``arch`` with the registry's classes and preprocessing."""
    spec = get_spec(arch)
    torch.manual_seed(RANDOM_WEIGHTS_SEED)
    model = create_model(arch).eval()
    classes = [str(i) for i in range(spec.default_num_classes)]
    return LoadedWeights(model, arch, classes, get_preset(spec.preprocessing), "random")


def _no_weights(arch: str) -> UsageError:
    members = _members(arch)
    hint = f", put torchvision's {members[0].url.rsplit('/', 1)[-1]} in {_cache_dir()}" if members else ""
    return UsageError(
        f"no weights for {arch}: pass --weights PATH (a resnet-edge checkpoint or torchvision state_dict)"
        f"{hint}, or --random-weights for speed measurements only"
    )


def resolve_weights(arch: str, weights: Path | None = None, random_weights: bool = False) -> LoadedWeights:
    """The FP32 reference: ``weights``, else torchvision's local cache, else ``random_weights``."""
    spec = get_spec(arch)
    if weights is not None and random_weights:
        raise UsageError("pass either --weights or --random-weights, not both")
    if weights is not None:
        loaded = load_weights(Path(weights), arch)
    elif random_weights:
        loaded = untrained_weights(arch)
        log.warning("--random-weights: this bundle is for speed measurements only; its outputs mean nothing")
        return loaded
    else:
        cached = torchvision_cached_weights(arch)
        if cached is None:
            raise _no_weights(arch)
        path, member = cached
        log.info(f"weights: torchvision {member} from {path}")
        loaded = load_weights(path, arch)
        loaded.preprocessing = _torchvision_preprocessing(member)
    if loaded.source == "torchvision" and len(loaded.classes) == 1000 and spec.family == "imagenet":
        loaded.classes = _imagenet_categories()
    return loaded
