"""Checkpoints and weights: resnet-edge checkpoints and plain torchvision ``state_dict`` files.

A resnet-edge checkpoint is a dict with ``format == "resnet-edge-checkpoint"`` that records what a
consumer needs besides the weights: arch, shortcut option, class names, preprocessing, epoch and
validation accuracy. A torchvision file is a bare ``state_dict``; its depth is read off its keys so a
file for another depth is refused by name instead of with a wall of missing keys.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..core.errors import UsageError
from ..core.io import file_sha256, write_atomic
from ..data.presets import Preprocessing, get_preset
from ..models import MODEL_SPECS, create_model, get_spec

CHECKPOINT_FORMAT = "resnet-edge-checkpoint"
CHECKPOINT_VERSION = 1


@dataclass
class LoadedWeights:
    """A model with its weights, and what is known about them."""

    model: nn.Module
    arch: str
    classes: list[str]
    preprocessing: Preprocessing
    source: str  # "checkpoint" | "torchvision" | "random"
    path: Path | None = None
    sha256: str | None = None
    metadata: dict = field(default_factory=dict)


def atomic_torch_save(obj, path: Path) -> None:
    """``torch.save`` to a temporary file beside ``path``, then rename: never a half-written file.

    Serialized in memory first: torch.save reports a failed write (full disk, ``ulimit -f``) as an
    opaque RuntimeError, a plain file write as the ``OSError`` it is.
    """
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_atomic(Path(path), buffer.getbuffer())


def save_checkpoint(path: Path, model: nn.Module, arch: str, classes: list[str], preprocessing: Preprocessing, **extra) -> None:
    """Write a resnet-edge checkpoint atomically; ``extra`` adds epoch, accuracy, optimizer state..."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "arch": arch,
        "shortcut": getattr(model, "shortcut", None),
        "num_classes": len(classes),
        "classes": list(classes),
        "preprocessing": preprocessing.to_dict(),
        "state_dict": model.state_dict(),
        **extra,
    }
    atomic_torch_save(payload, path)


def read_weights_file(path: Path) -> dict:
    """Load a checkpoint or state_dict file onto the CPU; a ``UsageError`` when it is not one."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UsageError(f"weights file {path} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch.load raises pickle, zip and runtime errors alike
        raise UsageError(f"{path} is not a PyTorch weights file ({type(error).__name__}); pass a .pth checkpoint") from None
    if not isinstance(payload, dict):
        raise UsageError(f"{path} holds a {type(payload).__name__}, not a checkpoint or state_dict")
    if payload.get("format") == CHECKPOINT_FORMAT:
        check_checkpoint(payload, path)
    return payload


# key -> (the type it must have, what it is called in the message)
_CHECKPOINT_FIELDS = {
    "arch": (str, "a model name"),
    "state_dict": (dict, "a dict of tensors"),
    "classes": (list, "a list of class names"),
    "preprocessing": (dict, "a preprocessing dict"),
}


def check_checkpoint(payload: dict, path: Path) -> None:
    """Refuse a file marked as a resnet-edge checkpoint whose structure is not one (a ``UsageError``)."""
    for key, (kind, what) in _CHECKPOINT_FIELDS.items():
        if key not in payload:
            raise UsageError(f"checkpoint {path} is damaged: it has no {key!r}; re-create it with resnet-edge train")
        if not isinstance(payload[key], kind):
            raise UsageError(f"checkpoint {path} is damaged: {key!r} is not {what}; re-create it with resnet-edge train")
    if payload["arch"] not in MODEL_SPECS:
        raise UsageError(f"checkpoint {path} is for an unknown arch {payload['arch']!r}; see resnet-edge models")
    if not all(isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in payload["state_dict"].items()):
        raise UsageError(f"checkpoint {path} is damaged: 'state_dict' is not a dict of tensors; re-create it with resnet-edge train")
    if not all(isinstance(name, str) for name in payload["classes"]):
        raise UsageError(f"checkpoint {path} is damaged: 'classes' is not a list of names; re-create it with resnet-edge train")
    try:
        Preprocessing.from_dict(payload["preprocessing"])
    except (KeyError, TypeError, ValueError):
        raise UsageError(f"checkpoint {path} is damaged: 'preprocessing' is incomplete; re-create it with resnet-edge train") from None


def _strip_prefixes(state_dict: dict) -> dict:
    # DistributedDataParallel and torch.compile save keys under these prefixes.
    return {re.sub(r"^(module\.|_orig_mod\.)+", "", key): value for key, value in state_dict.items()}


def _structure(state_dict: dict) -> tuple[str, tuple[int, ...], bool, int]:
    """(family, blocks per stage, bottleneck?, number of blocks with a projection shortcut)."""
    stage_blocks = []
    for stage in range(1, 5):
        indices = {int(m.group(1)) for key in state_dict if (m := re.match(rf"layer{stage}\.(\d+)\.", key))}
        if indices:
            stage_blocks.append(max(indices) + 1)
    projected = {m.group(0) for key in state_dict if (m := re.match(r"layer\d+\.\d+\.downsample", key))}
    bottleneck = any(key.endswith("conv3.weight") for key in state_dict)
    family = "imagenet" if state_dict["conv1.weight"].shape[-1] == 7 else "cifar"
    return family, tuple(stage_blocks), bottleneck, len(projected)


def infer_arch(state_dict: dict) -> tuple[str | None, str | None]:
    """(arch, shortcut option) of a torchvision-style ``state_dict``; arch is ``None`` when nothing fits.

    Plain nets and option-A residual nets have identical weights; the residual net is assumed.
    """
    family, layers, bottleneck, projected = _structure(state_dict)
    shortcut = "C" if projected == sum(layers) else "B" if projected else "A"
    for spec in MODEL_SPECS.values():  # residual nets come first in the registry
        if (spec.family, spec.layers, spec.block == "bottleneck") == (family, layers, bottleneck):
            return spec.name, shortcut
    return None, shortcut


def _same_structure(arch: str, other: str) -> bool:
    a, b = get_spec(arch), get_spec(other)
    return (a.family, a.layers, a.block) == (b.family, b.layers, b.block)


def load_weights(path: Path, arch: str | None = None, num_classes: int | None = None) -> LoadedWeights:
    """Build the model a weights file describes and load it with ``strict=True``.

    ``arch`` is required for a bare state_dict only when its structure is ambiguous; when given, it
    must agree with the file. ``num_classes``, when given, must agree with the file's classifier.
    """
    path = Path(path).expanduser()
    payload = read_weights_file(path)
    if payload.get("format") == CHECKPOINT_FORMAT:
        file_arch, state_dict = payload["arch"], payload["state_dict"]
        if arch and arch != file_arch:
            raise UsageError(f"checkpoint {path} is for {file_arch}, not {arch}; pass --arch {file_arch} or another file")
        classes = list(payload["classes"])
        preprocessing = Preprocessing.from_dict(payload["preprocessing"])
        shortcut, source = payload.get("shortcut"), "checkpoint"
        metadata = {k: payload[k] for k in ("epoch", "val_acc1", "data") if k in payload}
    else:
        state_dict = _strip_prefixes(payload)
        if "fc.weight" not in state_dict or "conv1.weight" not in state_dict:
            raise UsageError(f"{path} is not a ResNet state_dict (no conv1/fc weights)")
        if not all(isinstance(value, torch.Tensor) for value in state_dict.values()):
            raise UsageError(f"{path} is not a ResNet state_dict (some values are not tensors)")
        file_arch, shortcut = infer_arch(state_dict)
        if arch and file_arch and not _same_structure(arch, file_arch):
            raise UsageError(f"{path} holds {file_arch} weights, not {arch}; pass the file for {arch} or --arch {file_arch}")
        file_arch = arch or file_arch
        if file_arch is None:
            raise UsageError(f"cannot tell which ResNet {path} holds; pass --arch")
        spec = get_spec(file_arch)
        classes = [str(index) for index in range(state_dict["fc.weight"].shape[0])]
        preprocessing = get_preset(spec.preprocessing)
        shortcut = None if spec.plain else shortcut
        source, metadata = "torchvision", {}
    if num_classes is not None and num_classes != len(classes):
        raise UsageError(f"{path} has {len(classes)} classes, but {num_classes} were asked for")
    model = create_model(file_arch, num_classes=len(classes), shortcut=shortcut)
    missing, unexpected = model.load_state_dict(state_dict, strict=False)
    if missing or unexpected:
        problem = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        raise UsageError(f"{path} does not fit {file_arch} ({problem}); is it for another arch or shortcut option?")
    return LoadedWeights(model.eval(), file_arch, classes, preprocessing, source, path, file_sha256(path), metadata)
