"""``resnet_edge::int8_residual_block``: a whole residual block that carries its INT8 Q/DQ scales.

The fused C++/CUDA ops take float weights only. For an INT8 TensorRT engine the graph must say
where to quantize and with which range: the input and weights of every convolution and the
shortcut input of the residual add (NVIDIA/TensorRT#1992). This op carries those ranges (ModelOpt's
``amax`` values, symmetric INT8, scale = amax / 127, as ModelOpt and TensorRT use them) next to the
folded weights, so one node per block reaches Torch-TensorRT, whose converter
(``resnet_edge.ops.tensorrt_converters``) rebuilds it as Q/DQ + convolution + add + ReLU layers
that TensorRT fuses into INT8 kernels.

Its eager kernel is a reference in plain PyTorch: fake quantization with exactly those ranges,
then the float block, on any device. It is what CPU hosts use to check an INT8 fused model
before the engine is built on the GPU; it is not meant to be fast.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from ..models.blocks import zero_pad_shortcut

# ModelOpt's INT8 grid: [-128, 127] with scale amax / 127 (TensorRT's IQuantizeLayer uses the same).
INT8_MIN, INT8_MAX = -128, 127


def fake_quantize(x: Tensor, amax: Optional[Tensor]) -> Tensor:
    """``x`` rounded to the INT8 grid of ``amax`` (one value: per tensor; one per dim-0 slice: per
    channel), as ModelOpt's ``TensorQuantizer`` does; ``x`` unchanged when ``amax`` is None."""
    if amax is None:
        return x
    scale = amax.detach().float().flatten() / INT8_MAX
    source = x.float()
    if scale.numel() == 1:
        out = torch.fake_quantize_per_tensor_affine(source, scale, torch.zeros(1, dtype=torch.int32, device=x.device), INT8_MIN, INT8_MAX)
    else:
        zero = torch.zeros(scale.numel(), dtype=torch.int32, device=x.device)
        out = torch.fake_quantize_per_channel_affine(source, scale, zero, 0, INT8_MIN, INT8_MAX)
    return out.to(x.dtype)


@torch.library.custom_op("resnet_edge::int8_residual_block", mutates_args=())
def int8_residual_block(
    x: Tensor,
    weights: list[Tensor],
    biases: list[Tensor],
    input_amax: list[Optional[Tensor]],
    weight_amax: list[Optional[Tensor]],
    strides: list[int],
    shortcut_weight: Optional[Tensor],
    shortcut_bias: Optional[Tensor],
    shortcut_input_amax: Optional[Tensor],
    shortcut_weight_amax: Optional[Tensor],
    residual_amax: Optional[Tensor],
    residual: bool,
) -> Tensor:
    """relu(conv_n(... relu(conv_1(x)) ...) + shortcut(x)) with every Q/DQ whose amax is given.

    ``weights[i]``/``biases[i]``: the BN-folded convolutions in order (basic block: 3x3, 3x3;
    bottleneck: 1x1, 3x3, 1x1), ``strides[i]`` each one's stride; ``input_amax[i]`` quantizes the
    convolution's input, ``weight_amax[i]`` its weights (None: that tensor stays in float, as a layer
    kept in higher precision does). The shortcut is the projection ``shortcut_weight`` (its own
    input and weight ranges) or the parameter-free identity / option A; ``residual_amax`` quantizes
    the shortcut's output where it enters the add. ``residual=False`` is the plain block (no add).
    """
    out = x
    last = len(weights) - 1
    for index, (weight, bias, stride) in enumerate(zip(weights, biases, strides)):
        out = F.conv2d(
            fake_quantize(out, input_amax[index]),
            fake_quantize(weight, weight_amax[index]),
            bias,
            stride=stride,
            padding=weight.shape[-1] // 2,
        )
        if index == last and residual:
            block_stride = max(strides)
            if shortcut_weight is not None:
                shortcut = F.conv2d(
                    fake_quantize(x, shortcut_input_amax),
                    fake_quantize(shortcut_weight, shortcut_weight_amax),
                    shortcut_bias,
                    stride=block_stride,
                )
            else:
                shortcut = zero_pad_shortcut(x, block_stride, weight.shape[0] - x.shape[1])
            out = out + fake_quantize(shortcut, residual_amax)
        out = torch.relu(out)
    return out


@int8_residual_block.register_fake
def _(x, weights, biases, input_amax, weight_amax, strides, shortcut_weight, shortcut_bias, shortcut_input_amax,
      shortcut_weight_amax, residual_amax, residual):
    height, width = x.shape[2], x.shape[3]
    for weight, stride in zip(weights, strides):
        kernel = weight.shape[-1]
        padding = kernel // 2
        height = (height + 2 * padding - kernel) // stride + 1
        width = (width + 2 * padding - kernel) // stride + 1
    return x.new_empty((x.shape[0], weights[-1].shape[0], height, width))
