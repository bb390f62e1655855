"""Calibration images for the quantization tests."""

from __future__ import annotations

import torch

from resnet_edge.data import ShapesDataset, eval_transform, get_preset


def shapes_images(count: int, split: str = "train") -> torch.Tensor:
    """``count`` images of the built-in shapes set, CIFAR-preprocessed, as one NCHW batch."""
    dataset = ShapesDataset(count, split=split, transform=eval_transform(get_preset("cifar")))
    return torch.stack([dataset[index][0] for index in range(count)])
