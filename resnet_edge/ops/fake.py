"""Fake (meta) kernels of the fused block ops: the output's shape, dtype, device and layout,
computed without running the op, so torch.export, torch.compile(fullgraph=True) and FakeTensor
tracing see through the ops. The checks mirror the C++ ones that decide the output shape.

The output's strides are part of the contract (csrc/ops/contract.h): the real kernels return exactly
``torch.empty(size, memory_format=torch.channels_last)``'s strides, size-1 dimensions included, because
torch.export and AOTInductor plan buffers and views by the strides given here
(tests/ops/test_contract.py checks the two agree).
"""

from __future__ import annotations

import torch
from torch import Tensor


def _block_output(op: str, x: Tensor, params: dict[str, Tensor | None], out_channels: int, stride: int) -> Tensor:
    torch._check(x.dim() == 4, lambda: f"{op}: x must be a 4-D (N, C, H, W) tensor, but it has {x.dim()} dimension(s).")
    torch._check(stride >= 1, lambda: f"{op}: stride must be at least 1, but it is {stride}.")
    for name, tensor in params.items():
        if tensor is None:
            continue
        torch._check(
            tensor.device == x.device,
            lambda: f"{op}: {name} is on {tensor.device} but x is on {x.device}; "
            "move the model and its input to the same device.",
        )
        torch._check(
            tensor.dtype == x.dtype,
            lambda: f"{op}: {name} has dtype {tensor.dtype} but x has dtype {x.dtype}; "
            "convert the model and its input to the same dtype.",
        )
    in_channels = params["conv1_weight"].shape[1]
    torch._check(
        in_channels == x.shape[1],
        lambda: f"{op}: conv1_weight expects {in_channels} input channels, but its input (x) has {x.shape[1]}.",
    )
    # 3x3/pad 1 and 1x1/pad 0 convolutions with this stride both give ceil(size / stride).
    batch, _, height, width = x.shape
    size = (batch, out_channels, (height - 1) // stride + 1, (width - 1) // stride + 1)
    return torch.empty(size, dtype=x.dtype, device=x.device, memory_format=torch.channels_last)


@torch.library.register_fake("resnet_edge::fused_basic_block")
def _fused_basic_block_fake(
    x, conv1_weight, conv1_bias, conv2_weight, conv2_bias, shortcut_weight, shortcut_bias, stride, residual
):
    params = {
        "conv1_weight": conv1_weight,
        "conv1_bias": conv1_bias,
        "conv2_weight": conv2_weight,
        "conv2_bias": conv2_bias,
        "shortcut_weight": shortcut_weight,
        "shortcut_bias": shortcut_bias,
    }
    return _block_output("resnet_edge::fused_basic_block", x, params, conv2_weight.shape[0], stride)


@torch.library.register_fake("resnet_edge::fused_bottleneck")
def _fused_bottleneck_fake(
    x,
    conv1_weight,
    conv1_bias,
    conv2_weight,
    conv2_bias,
    conv3_weight,
    conv3_bias,
    shortcut_weight,
    shortcut_bias,
    stride,
    residual,
):
    params = {
        "conv1_weight": conv1_weight,
        "conv1_bias": conv1_bias,
        "conv2_weight": conv2_weight,
        "conv2_bias": conv2_bias,
        "conv3_weight": conv3_weight,
        "conv3_bias": conv3_bias,
        "shortcut_weight": shortcut_weight,
        "shortcut_bias": shortcut_bias,
    }
    return _block_output("resnet_edge::fused_bottleneck", x, params, conv3_weight.shape[0], stride)
