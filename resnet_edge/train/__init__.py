"""Training with the paper's recipe, single-process or under ``torchrun``."""

from .trainer import TrainConfig, evaluate, resolve_device, train

__all__ = ["TrainConfig", "evaluate", "resolve_device", "train"]
