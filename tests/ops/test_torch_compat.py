"""Behaviour that differs across the torch releases the package supports (torch>=2.8; pinned 2.14.1; the
lent GPU machine has 2.11): settings the fused ops must read the way ATen's own kernels read them."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from resnet_edge import ops


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU; none is visible")
@pytest.mark.skipif(
    not hasattr(getattr(torch.backends.cudnn, "conv", None), "fp32_precision"),
    reason="this torch has no per-operator TF32 setting (torch.backends.cudnn.conv.fp32_precision, torch >= 2.9)",
)
def test_fused_cuda_op_follows_the_per_operator_tf32_setting():
    """With IEEE FP32 asked for through the per-operator API alone (what PyTorch's CUDA notes
    recommend), the fused op must neither refuse the setting nor run its convolutions in TF32."""
    generator = torch.Generator().manual_seed(0)
    channels = 64
    x = torch.randn(2, channels, 16, 16, generator=generator, dtype=torch.float64)
    w1, w2 = (torch.randn(channels, channels, 3, 3, generator=generator, dtype=torch.float64) * (2 / (9 * channels)) ** 0.5 for _ in range(2))
    b1, b2 = (torch.randn(channels, generator=generator, dtype=torch.float64) * 0.1 for _ in range(2))
    expected = F.relu(F.conv2d(F.relu(F.conv2d(x, w1, b1, padding=1)), w2, b2, padding=1) + x)
    args = [tensor.float().cuda() for tensor in (x, w1, b1, w2, b2)]
    before = torch.backends.cudnn.conv.fp32_precision
    torch.backends.cudnn.conv.fp32_precision = "ieee"
    try:
        out = ops.fused_basic_block(*args, None, None, 1, True)
    finally:
        torch.backends.cudnn.conv.fp32_precision = before
    # TF32 (10-bit mantissa) misses by about 1e-3 over these 576-term sums; IEEE FP32 by about 1e-6.
    torch.testing.assert_close(out.double().cpu(), expected, rtol=1e-4, atol=1e-4)
