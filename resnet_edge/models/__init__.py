"""The ResNet family of He et al. 2015: ImageNet, CIFAR and plain nets, torchvision-compatible."""

from .blocks import BasicBlock, Bottleneck, ZeroPadShortcut, block_names
from .registry import MODEL_SPECS, ModelSpec, count_macs, count_params, create_model, get_spec, list_models, model_info
from .resnet import ResNet

__all__ = [
    "BasicBlock",
    "Bottleneck",
    "MODEL_SPECS",
    "ModelSpec",
    "ResNet",
    "ZeroPadShortcut",
    "block_names",
    "count_macs",
    "count_params",
    "create_model",
    "get_spec",
    "list_models",
    "model_info",
]
