"""Data: the ``--data`` spec (folders, CIFAR-10 batches, built-in shapes) and preprocessing presets."""

from .presets import PRESETS, Preprocessing, eval_transform, get_preset, train_transform
from .source import DataSource, open_data
from .shapes import SHAPE_CLASSES, ShapesDataset

__all__ = [
    "PRESETS",
    "Preprocessing",
    "DataSource",
    "SHAPE_CLASSES",
    "ShapesDataset",
    "eval_transform",
    "get_preset",
    "open_data",
    "train_transform",
]
