"""Weights: resnet-edge checkpoints, torchvision ``state_dict`` files and torchvision's local cache.

``load_weights(path, arch)`` builds the model a file describes; ``resolve_weights(arch, weights,
random_weights)`` is the one rule every command uses to find the FP32 reference.
"""

from .checkpoint import CHECKPOINT_FORMAT, LoadedWeights, infer_arch, load_weights, read_weights_file, save_checkpoint
from .torchvision import resolve_weights, torchvision_cached_weights, untrained_weights

__all__ = [
    "CHECKPOINT_FORMAT",
    "LoadedWeights",
    "infer_arch",
    "load_weights",
    "read_weights_file",
    "resolve_weights",
    "save_checkpoint",
    "torchvision_cached_weights",
    "untrained_weights",
]
