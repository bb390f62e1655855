"""The fused block ops against a pure-PyTorch reference (CPU oneDNN, CPU ATen and CUDA), opcheck,
and the errors they raise on bad input."""

from __future__ import annotations

import pytest
import torch

from helpers.ops_cases import SHORTCUTS, conv_weight, make_case, reference
from resnet_edge import ops

cuda_only = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU; none is visible")


@pytest.mark.parametrize("op", ["basic", "bottleneck"])
@pytest.mark.parametrize("shortcut", SHORTCUTS)
def test_cpu_matches_reference(cpu_path, op, shortcut):
    torch.manual_seed(0)
    target, args = make_case(op, shortcut)
    out = target(*args)
    torch.testing.assert_close(out, reference(target, args), rtol=1e-4, atol=1e-4)
    assert out.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("op", ["basic", "bottleneck"])
def test_cpu_accepts_channels_last_and_odd_sizes(cpu_path, op):
    torch.manual_seed(0)
    target, args = make_case(op, "zero_pad", size=(7, 5), batch=3)
    args = (args[0].contiguous(memory_format=torch.channels_last), *args[1:])
    torch.testing.assert_close(target(*args), reference(target, args), rtol=1e-4, atol=1e-4)


def test_prepacked_weights_follow_in_place_updates_and_new_shapes():
    """The oneDNN path caches reordered weights; a changed weight or input shape must not reuse a stale one."""
    torch.manual_seed(0)
    target, args = make_case("bottleneck", "projection")
    torch.testing.assert_close(target(*args), reference(target, args), rtol=1e-4, atol=1e-4)
    args[1].mul_(0.5)  # conv1_weight, in place: same tensor, new version
    torch.testing.assert_close(target(*args), reference(target, args), rtol=1e-4, atol=1e-4)
    bigger = (torch.randn(5, *args[0].shape[1:2], 12, 12), *args[1:])
    torch.testing.assert_close(target(*bigger), reference(target, bigger), rtol=1e-4, atol=1e-4)
    with torch.inference_mode():  # inference tensors skip the cache
        frozen = tuple(a.clone() if isinstance(a, torch.Tensor) else a for a in args)
        torch.testing.assert_close(target(*frozen), reference(target, frozen), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("op", ["basic", "bottleneck"])
@pytest.mark.parametrize("shortcut", ["projection", "zero_pad", "plain"])
def test_opcheck(op, shortcut):
    torch.manual_seed(0)
    target, args = make_case(op, shortcut)
    torch.library.opcheck(target.default, args)


def test_backward_is_refused():
    target, args = make_case("basic", "identity")
    x = args[0].requires_grad_()
    out = target(x, *args[1:])
    with pytest.raises(RuntimeError, match="not implemented"):
        out.sum().backward()


def _replace(args, index, value):
    return (*args[:index], value, *args[index + 1:])


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda a: _replace(a, 0, a[0].double()), r"x has dtype Double, but the CPU kernel supports only Float\."),
        (lambda a: _replace(a, 1, a[1].double()), r"conv1_weight has dtype Double but x has dtype Float"),
        (lambda a: _replace(a, 0, a[0][0]), r"x must be a 4-D \(N, C, H, W\) tensor, but it has 3 dimension\(s\)\."),
        (lambda a: _replace(a, 0, a[0][:, :8]), r"conv1_weight expects 16 input channels, but its input \(x\) has 8\."),
        (lambda a: _replace(a, 3, a[3][:, :8]), r"conv2_weight expects 8 input channels, but its input \(the output of conv1_weight\) has 32\."),
        (lambda a: _replace(a, 2, a[2][:4]), r"conv1_bias must be a 1-D tensor with one value per output channel"),
        (lambda a: _replace(a, 1, a[1][:, :, :1, :1]), r"conv1_weight must hold 3x3 kernels"),
        (lambda a: _replace(a, 6, None), r"shortcut_weight and shortcut_bias must be given together"),
        (lambda a: _replace(a, 8, False), r"must be None when residual is false"),
        (lambda a: _replace(a, 7, 0), r"stride must be at least 1, but it is 0\."),
    ],
)
def test_bad_input_raises_a_sentence(mutate, message):
    _, args = make_case("basic", "projection")
    with pytest.raises(RuntimeError, match=message):
        ops.fused_basic_block(*mutate(args))


def test_zero_pad_shortcut_cannot_drop_channels():
    _, args = make_case("basic", "identity")
    narrower = [conv_weight(8, 16, 3, "cpu", torch.float32), torch.zeros(8), conv_weight(8, 8, 3, "cpu", torch.float32), torch.zeros(8)]
    with pytest.raises(RuntimeError, match="parameter-free shortcut can only zero-pad channels"):
        ops.fused_basic_block(args[0], *narrower, None, None, 1, True)


def test_device_mismatch_is_refused_by_the_cpu_kernel():
    """Weights on another device than x: the C++ check names the argument (redispatched to the CPU
    kernel here, since a CPU-only host has no second real device)."""
    _, args = make_case("basic", "identity")
    args = _replace(args, 3, args[3].to("meta"))
    keys = torch._C.DispatchKeySet(torch._C.DispatchKey.CPU)
    with pytest.raises(RuntimeError, match=r"conv2_weight is on meta but x is on cpu; move the model and its input"):
        ops.fused_basic_block.default.redispatch(keys, *args)
    with pytest.raises(RuntimeError, match=r"conv2_weight is on meta but x is on cpu"):  # the fake kernel agrees
        ops.fused_basic_block(*args)


@pytest.mark.cuda
@cuda_only
@pytest.mark.parametrize("op", ["basic", "bottleneck"])
@pytest.mark.parametrize("shortcut", SHORTCUTS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("channels_last", [False, True])
def test_cuda_matches_reference(op, shortcut, dtype, channels_last):
    torch.manual_seed(0)
    target, args = make_case(op, shortcut, device="cuda", dtype=dtype, in_channels=32)
    if channels_last:
        args = (args[0].contiguous(memory_format=torch.channels_last), *args[1:])
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):  # exact FP32 on both sides
        out, expected = target(*args), reference(target, args)
    tolerance = 1e-4 if dtype == torch.float32 else 2e-2  # float16 rounds every intermediate
    torch.testing.assert_close(out.float(), expected, rtol=tolerance, atol=tolerance)
    assert out.dtype == dtype and out.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.cuda
@cuda_only
@pytest.mark.parametrize("op", ["basic", "bottleneck"])
def test_cuda_opcheck(op):
    torch.manual_seed(0)
    target, args = make_case(op, "projection", device="cuda", dtype=torch.float16, in_channels=32)
    torch.library.opcheck(target.default, args)


@pytest.mark.cuda
@cuda_only
def test_cuda_device_mismatch_is_refused():
    _, args = make_case("basic", "projection", device="cuda")
    args = _replace(args, 0, args[0].cpu())
    with pytest.raises(RuntimeError, match=r"conv1_weight is on cuda:0 but x is on cpu; move the model and its input"):
        ops.fused_basic_block(*args)
