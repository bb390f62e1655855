"""A trained model made deliberately fragile under INT8, for the sensitivity and fallback tests.

In block ``layer2.1`` one channel of ``bn1``'s output is scaled by K and the matching input slice of
``conv2``'s weight divided by K. The FP32 function is unchanged (ReLU is positively homogeneous), but
``conv2``'s per-tensor input quantizer must now span a K-times larger range and its per-output-channel
weight scales bury that slice: quantizing ``layer2.1.conv2`` alone wrecks the model.
"""

from __future__ import annotations

import copy

import torch

from resnet_edge.data import ShapesDataset, eval_transform, get_preset

FRAGILE = "layer2.1.conv2"
K = 1000.0


def make_fragile(model: torch.nn.Module, block: str = "layer2.1", channel: int = 3, factor: float = K) -> torch.nn.Module:
    """A copy of ``model`` computing the same function with one outlier channel inside ``block``."""
    fragile = copy.deepcopy(model).eval()
    module = fragile.get_submodule(block)
    with torch.no_grad():
        module.bn1.weight[channel] *= factor
        module.bn1.bias[channel] *= factor
        module.conv2.weight[:, channel] /= factor
    return fragile


def labelled_shapes(count: int, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``count`` images of the shapes ``split`` (CIFAR-preprocessed) and their labels."""
    dataset = ShapesDataset(count, split=split, transform=eval_transform(get_preset("cifar")))
    images, labels = zip(*(dataset[index] for index in range(count)))
    return torch.stack(images), torch.tensor(labels)
