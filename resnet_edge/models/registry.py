"""The model registry: every network of the paper by name, with its facts (params, FLOPs, input size)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ..core.errors import UsageError
from .blocks import BasicBlock, Bottleneck
from .resnet import ResNet


@dataclass(frozen=True)
class ModelSpec:
    """What defines one registered network."""

    name: str
    family: str  # "imagenet" | "cifar"
    block: str  # "basic" | "bottleneck"
    layers: tuple[int, ...]
    depth: int
    plain: bool = False

    @property
    def default_shortcut(self) -> str | None:
        """Option B for ImageNet nets, A for CIFAR nets (paper §4.2), none for plain nets."""
        if self.plain:
            return None
        return "B" if self.family == "imagenet" else "A"

    @property
    def default_num_classes(self) -> int:
        return 1000 if self.family == "imagenet" else 10

    @property
    def input_size(self) -> int:
        return 224 if self.family == "imagenet" else 32

    @property
    def preprocessing(self) -> str:
        """Name of the preprocessing preset this net is trained and evaluated with."""
        return self.family


_IMAGENET_LAYERS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}
_CIFAR_DEPTHS = (20, 32, 44, 56, 110, 1202)
_PLAIN_IMAGENET_DEPTHS = (18, 34)
_PLAIN_CIFAR_DEPTHS = (20, 32, 44, 56, 110)


def _build_specs() -> dict[str, ModelSpec]:
    specs: list[ModelSpec] = []
    for depth, layers in _IMAGENET_LAYERS.items():
        block = "basic" if depth < 50 else "bottleneck"
        specs.append(ModelSpec(f"resnet{depth}", "imagenet", block, layers, depth))
    for depth in _CIFAR_DEPTHS:
        n = (depth - 2) // 6
        specs.append(ModelSpec(f"resnet{depth}", "cifar", "basic", (n, n, n), depth))
    for depth in _PLAIN_IMAGENET_DEPTHS:
        specs.append(ModelSpec(f"plain{depth}", "imagenet", "basic", _IMAGENET_LAYERS[depth], depth, plain=True))
    for depth in _PLAIN_CIFAR_DEPTHS:
        n = (depth - 2) // 6
        specs.append(ModelSpec(f"plain{depth}", "cifar", "basic", (n, n, n), depth, plain=True))
    return {spec.name: spec for spec in specs}


MODEL_SPECS: dict[str, ModelSpec] = _build_specs()


def list_models() -> list[str]:
    """Names of every registered network, ImageNet residual nets first."""
    return list(MODEL_SPECS)


def get_spec(name: str) -> ModelSpec:
    """The spec of ``name``; a ``UsageError`` naming the known models when it is unknown."""
    try:
        return MODEL_SPECS[name]
    except KeyError:
        raise UsageError(f"unknown arch {name!r}; choose one of: {', '.join(MODEL_SPECS)}") from None


def create_model(name: str, num_classes: int | None = None, shortcut: str | None = None, **kwargs) -> ResNet:
    """Build a registered network with freshly initialised weights.

    Args:
        name: a name from ``list_models()``, e.g. ``"resnet50"`` or ``"resnet20"``.
        num_classes: classifier width; 1000 for ImageNet nets and 10 for CIFAR nets by default.
        shortcut: ``"A"``, ``"B"`` or ``"C"`` to override the family default. Plain nets take none.
        **kwargs: passed to ``ResNet`` (none are needed today; kept open for width variants).
    """
    spec = get_spec(name)
    if spec.plain and shortcut is not None:
        raise UsageError(f"{name} is a plain net and has no shortcuts; drop the shortcut option")
    if shortcut is not None and shortcut not in ("A", "B", "C"):
        raise UsageError(f"unknown shortcut option {shortcut!r}; choose A, B or C")
    block = BasicBlock if spec.block == "basic" else Bottleneck
    model = ResNet(
        block,
        spec.layers,
        family=spec.family,
        num_classes=num_classes or spec.default_num_classes,
        shortcut=shortcut if shortcut is not None else spec.default_shortcut,
        **kwargs,
    )
    model.arch = name
    return model


def count_params(model: nn.Module) -> int:
    """Number of parameters (BN running statistics are buffers and not counted, as in the paper)."""
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, input_size: int) -> int:
    """Multiply-accumulates of one forward pass at batch 1 (convolutions and the fc layer)."""
    device = next(model.parameters()).device
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.empty(1, 3, input_size, input_size, device=device))
    return counter.get_total_flops() // 2  # FlopCounterMode counts a multiply-add as two FLOPs


@lru_cache(maxsize=None)
def model_info(name: str, shortcut: str | None = None) -> dict:
    """Facts of a registered network at its default input: params, GFLOPs (mult-adds x 1e-9) and more.

    The network is built on the ``meta`` device, so even ResNet-1202 costs no memory or init time.
    """
    spec = get_spec(name)
    with torch.device("meta"):
        model = create_model(name, shortcut=shortcut).eval()
    return {
        "name": name,
        "params": count_params(model),
        "gflops": round(count_macs(model, spec.input_size) / 1e9, 3),
        "input_size": spec.input_size,
        "family": spec.family,
        "block": spec.block,
        "depth": spec.depth,
        "shortcut": model.shortcut,
        "num_classes": spec.default_num_classes,
    }
