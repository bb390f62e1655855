"""BatchNorm folding: one convolution with a bias that computes ``bn(conv(x))`` in inference mode."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.fusion import fuse_conv_bn_weights


def fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> tuple[Tensor, Tensor]:
    """The weight and bias of a convolution equal to ``bn(conv(x))`` with BN's running statistics.

    The arithmetic runs in float64 and the result is cast back to the convolution's dtype, so a
    half-precision model loses nothing to the fold itself. The weight comes back channels_last,
    the layout the fused kernels convolve in (no per-call weight copy on cuDNN).
    """
    dtype = conv.weight.dtype
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
        return weight.detach().to(dtype).contiguous(memory_format=torch.channels_last), bias.detach().to(dtype)


def folded_conv(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A copy of ``conv`` with ``bn`` folded into its weight and (new) bias.

    Its weight is channels_last, so its output is too: the stem then hands the fused blocks
    activations in the layout they compute in, with no conversion.
    """
    weight, bias = fold_conv_bn(conv, bn)
    fused = nn.Conv2d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        dilation=conv.dilation,
        groups=conv.groups,
        bias=True,
        device=weight.device,
        dtype=weight.dtype,
    )
    fused.weight = nn.Parameter(weight, requires_grad=False)
    fused.bias = nn.Parameter(bias, requires_grad=False)
    return fused
