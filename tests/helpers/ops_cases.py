"""Builders of fused-op test cases: the arguments of one residual block for every shortcut kind,
for the float ops (``make_case``) and the INT8 block op (``int8_args``), and the plain-PyTorch
block they are checked against (``reference``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from resnet_edge import ops

SHORTCUTS = ("identity", "projection", "zero_pad", "plain")


def conv_weight(out_channels, in_channels, kernel, device, dtype):
    """A He-initialised convolution weight."""
    fan_in = in_channels * kernel * kernel
    return torch.randn(out_channels, in_channels, kernel, kernel, device=device, dtype=dtype) * (2 / fan_in) ** 0.5


def make_case(op: str, shortcut: str, device="cpu", dtype=torch.float32, batch=2, size=(9, 8), in_channels=16):
    """(op, args) for one block. identity keeps the shape; the others downsample by 2 and widen."""
    stride = 1 if shortcut == "identity" else 2
    if op == "basic":
        out = in_channels if shortcut == "identity" else 2 * in_channels
        layers = [(out, in_channels, 3), (out, out, 3)]
    else:
        planes = in_channels // 4 if shortcut == "identity" else in_channels // 2
        out = planes * 4
        layers = [(planes, in_channels, 1), (planes, planes, 3), (out, planes, 1)]
    params = []
    for out_channels, channels, kernel in layers:
        params += [conv_weight(out_channels, channels, kernel, device, dtype), torch.randn(out_channels, device=device, dtype=dtype)]
    if shortcut == "projection":
        params += [conv_weight(out, in_channels, 1, device, dtype), torch.randn(out, device=device, dtype=dtype)]
    else:
        params += [None, None]
    x = torch.randn(batch, in_channels, *size, device=device, dtype=dtype)
    target = ops.fused_basic_block if op == "basic" else ops.fused_bottleneck
    return target, (x, *params, stride, shortcut != "plain")


def reference(op, args):
    """The block in plain PyTorch, in float32: convolutions, ReLUs, shortcut, add, ReLU."""
    x, *rest = [a.float() if isinstance(a, torch.Tensor) else a for a in args]
    *params, shortcut_weight, shortcut_bias, stride, residual = rest
    strides = [stride, 1] if op is ops.fused_basic_block else [1, stride, 1]
    out = x
    for index, layer_stride in enumerate(strides):
        weight, bias = params[2 * index], params[2 * index + 1]
        out = F.conv2d(out, weight, bias, layer_stride, weight.shape[-1] // 2)
        if index < len(strides) - 1:
            out = F.relu(out)
    if residual:
        if shortcut_weight is not None:
            out = out + F.conv2d(x, shortcut_weight, shortcut_bias, stride)
        else:
            sampled = x[:, :, ::stride, ::stride]
            out = out + F.pad(sampled, (0, 0, 0, 0, 0, out.shape[1] - x.shape[1]))
    return F.relu(out)


def int8_args(op: str, case_args: tuple, quantize: bool = True) -> tuple:
    """int8_residual_block's arguments for a ``make_case`` block, with amax values when ``quantize``."""
    x, *params, stride, residual = case_args
    *convs, shortcut_weight, shortcut_bias = params
    weights, biases = convs[0::2], convs[1::2]
    strides = [1, stride, 1] if op == "bottleneck" else [stride, 1]

    def per_channel(weight):
        return weight.abs().amax(dim=(1, 2, 3), keepdim=True) if quantize else None

    def per_tensor(value):
        return torch.tensor(value) if quantize else None

    input_amax = [per_tensor(3.0)] + [per_tensor(2.0)] * (len(weights) - 1)
    projection = shortcut_weight is not None
    return (
        x, weights, biases, input_amax, [per_channel(w) for w in weights], strides,
        shortcut_weight, shortcut_bias,
        per_tensor(3.0) if projection else None, per_channel(shortcut_weight) if projection else None,
        per_tensor(2.5) if residual else None, residual,
    )
