"""Training with the paper's recipe, single-process or under ``torchrun``."""

from .trainer import TrainConfig, evaluate, train

__all__ = ["TrainConfig", "evaluate", "train"]
