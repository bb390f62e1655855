"""BatchNorm folding: one convolution with a bias that computes ``bn(conv(x))`` in inference mode.

The one implementation of the fold: the fused blocks (``fuse.modules``), the stem of ``fuse_model``
and every backend's unfused graph (``fold_batchnorm``) all go through ``fold_conv_bn``.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn
from torch.nn.utils.fusion import fuse_conv_bn_weights


def fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d, channels_last: bool = True) -> tuple[Tensor, Tensor]:
    """The weight and bias of a convolution equal to ``bn(conv(x))`` with BN's running statistics.

    The arithmetic runs in float64 and the result is cast back to the convolution's dtype, so a
    half-precision model loses nothing to the fold itself. With ``channels_last`` the weight comes
    back channels_last, the layout the fused kernels convolve in (no per-call weight copy on cuDNN).
    """
    dtype = conv.weight.dtype
    layout = torch.channels_last if channels_last else torch.contiguous_format
    # Not inference tensors even when called under torch.inference_mode(): those carry no version
    # counter, and the CPU kernels cache prepacked weights only for tensors that have one.
    with torch.no_grad(), torch.inference_mode(False):
        weight, bias = fuse_conv_bn_weights(
            conv.weight.double(),
            None if conv.bias is None else conv.bias.double(),
            bn.running_mean.double(),
            bn.running_var.double(),
            bn.eps,
            None if bn.weight is None else bn.weight.double(),
            None if bn.bias is None else bn.bias.double(),
        )
        return weight.detach().to(dtype).contiguous(memory_format=layout), bias.detach().to(dtype)


def folded_conv(conv: nn.Conv2d, bn: nn.BatchNorm2d, channels_last: bool = True) -> nn.Conv2d:
    """A copy of ``conv`` with ``bn`` folded into its weight and (new) bias.

    Its weight is channels_last unless ``channels_last=False``, so its output is too: the stem then
    hands the fused blocks activations in the layout they compute in, with no conversion.
    """
    weight, bias = fold_conv_bn(conv, bn, channels_last=channels_last)
    fused = nn.Conv2d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        dilation=conv.dilation,
        groups=conv.groups,
        bias=True,
        padding_mode=conv.padding_mode,
        device=weight.device,
        dtype=weight.dtype,
    )
    fused.weight = nn.Parameter(weight, requires_grad=False)
    fused.bias = nn.Parameter(bias, requires_grad=False)
    return fused


def _is_pair(conv: object, bn: object) -> bool:
    return isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of ``model`` (eval mode) with every BatchNorm2d folded into the convolution before it.

    Works on the resnet_edge module layout (``convK``/``bnK`` pairs and ``downsample = Sequential(conv,
    bn)``); what cannot be folded is left as it is, so the result is always equivalent. The folded
    weights keep the default (contiguous) layout: this is the graph exporters, calibrators and
    TorchScript take, not the fused kernels' input. ``model`` is not modified.
    """
    folded = copy.deepcopy(model).eval()
    for module in folded.modules():
        for index in (1, 2, 3):
            conv, bn = getattr(module, f"conv{index}", None), getattr(module, f"bn{index}", None)
            if _is_pair(conv, bn):
                setattr(module, f"conv{index}", folded_conv(conv, bn, channels_last=False))
                setattr(module, f"bn{index}", nn.Identity())
        if isinstance(module, nn.Sequential) and len(module) == 2 and _is_pair(module[0], module[1]):
            module[0], module[1] = folded_conv(module[0], module[1], channels_last=False), nn.Identity()
    return folded


__all__ = ["fold_batchnorm", "fold_conv_bn", "folded_conv"]
