"""The operand contract every backend's kernels rely on (csrc/ops/contract.h), checked on the CPU.

The shared block code asserts it before and after every convolution on every device, so a layout,
alignment or stride bug that only the CUDA kernels would notice fails here too (issue 21: the
option-A shortcut handed the CUDA epilogue an NCHW residual while the CPU suite stayed green).
"""

from __future__ import annotations

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

from helpers.ops_cases import conv_weight, make_case, reference
from resnet_edge import ops


def _channels_last_strides(shape):
    return torch.empty(shape, memory_format=torch.channels_last, device="meta").stride()


def _zero_pad_basic_block(in_channels: int, out_channels: int, stride: int, size: tuple[int, int], batch: int):
    """A basic block whose parameter-free shortcut has to zero-pad in_channels up to out_channels."""
    weights = [conv_weight(out_channels, in_channels, 3, "cpu", torch.float32), conv_weight(out_channels, out_channels, 3, "cpu", torch.float32)]
    biases = [torch.randn(out_channels), torch.randn(out_channels)]
    x = torch.randn(batch, in_channels, *size)
    return (x, weights[0], biases[0], weights[1], biases[1], None, None, stride, True)


@pytest.mark.parametrize(
    "in_channels, out_channels, stride, size, batch",
    [(16, 32, 2, (9, 8), 2), (16, 32, 1, (5, 7), 3), (8, 24, 2, (4, 4), 1), (16, 32, 2, (1, 1), 1)],
)
def test_zero_pad_shortcut_hands_the_kernel_a_channels_last_residual(cpu_path, in_channels, out_channels, stride, size, batch):
    """Failed before the fix with the contract's "residual must be channels_last-contiguous" error, as the
    CUDA epilogue did on the H200: at::zeros dropped the channels_last format passed in its options."""
    torch.manual_seed(0)
    args = _zero_pad_basic_block(in_channels, out_channels, stride, size, batch)
    out = ops.fused_basic_block(*args)
    torch.testing.assert_close(out, reference(ops.fused_basic_block, args), rtol=1e-4, atol=1e-4)
    assert out.stride() == _channels_last_strides(out.shape)


@pytest.mark.parametrize("op", ["basic", "bottleneck"])
@pytest.mark.parametrize("shortcut", ["identity", "projection", "zero_pad", "plain"])
@pytest.mark.parametrize("size, batch", [((9, 8), 2), ((1, 1), 1), ((2, 3), 1)])
def test_real_and_fake_kernels_give_the_same_strides(cpu_path, op, shortcut, size, batch):
    """torch.export and AOTInductor plan memory by the fake kernel's strides; the real kernels must give
    exactly those (size-1 dimensions included: the ATen path used to return (C, 1, 1, 1) at 1x1)."""
    torch.manual_seed(0)
    target, args = make_case(op, shortcut, size=size, batch=batch)
    real = target(*args)
    with FakeTensorMode() as mode:
        fake = target(*[mode.from_tensor(a) if isinstance(a, torch.Tensor) else a for a in args])
    assert (real.shape, real.stride(), real.dtype) == (fake.shape, fake.stride(), fake.dtype)
    assert real.stride() == _channels_last_strides(real.shape)


def test_misaligned_input_is_realigned_before_the_kernels(cpu_path):
    """An input view at an odd storage offset breaks the 16-byte alignment the kernels assume; the
    shared code copies it once instead of handing it on (or refusing a valid tensor)."""
    torch.manual_seed(0)
    _, args = make_case("basic", "identity")
    x = args[0]
    flat = torch.randn(x.numel() + 1)
    misaligned = flat[1:].view(x.shape[0], x.shape[2], x.shape[3], x.shape[1]).permute(0, 3, 1, 2)
    assert misaligned.data_ptr() % 16 != 0 and misaligned.is_contiguous(memory_format=torch.channels_last)
    args = (misaligned, *args[1:])
    torch.testing.assert_close(ops.fused_basic_block(*args), reference(ops.fused_basic_block, args), rtol=1e-4, atol=1e-4)


def test_misaligned_weight_and_bias_are_realigned(cpu_path):
    torch.manual_seed(0)
    _, args = make_case("basic", "projection")
    weight, bias = args[1], args[2]
    weight_storage, bias_storage = torch.randn(weight.numel() + 1), torch.randn(bias.numel() + 1)
    odd_weight = weight_storage[1:].view(weight.shape).copy_(weight)
    odd_bias = bias_storage[1:].copy_(bias)
    assert odd_weight.data_ptr() % 16 != 0 and odd_bias.data_ptr() % 16 != 0
    args = (args[0], odd_weight, odd_bias, *args[3:])
    torch.testing.assert_close(ops.fused_basic_block(*args), reference(ops.fused_basic_block, args), rtol=1e-4, atol=1e-4)
