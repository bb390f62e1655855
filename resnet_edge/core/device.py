"""One rule for ``--device``: auto, cpu or cuda, checked against the GPUs this process can see."""

from __future__ import annotations

import torch

from .errors import UsageError

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(requested: str = "auto") -> torch.device:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``; ``cuda`` without a GPU is refused."""
    requested = str(requested)
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UsageError("--device cuda was asked for, but no CUDA GPU is visible; use --device cpu")
        return torch.device(requested)
    if requested != "cpu":
        raise UsageError(f"unknown device {requested!r}; use cpu, cuda or auto")
    return torch.device("cpu")
