"""What the fused-op GPU benchmark and its memcheck cases share: dtypes, precision flags, logit error, routes."""

from __future__ import annotations

import contextlib
import os
from typing import Callable

import torch

DTYPES = {"fp32": torch.float32, "fp16": torch.float16}
ROUTE_ENV = "RESNET_EDGE_CONV_ROUTE"  # the fused ops' CUDA convolution route (csrc/ops/conv_route.h)


@contextlib.contextmanager
def precision_flags(device: torch.device, benchmark: bool = True):
    """cuDNN on, autotuning on (``benchmark``), TF32 off for cuDNN and matmul (exact FP32); restored afterwards.

    ``allow_tf32`` is the spelling that torch 2.8 through 2.14 all accept; the newer ``fp32_precision``
    properties are left alone so the two APIs are never mixed.
    """
    if device.type != "cuda":
        yield
        return
    matmul = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        with torch.backends.cudnn.flags(enabled=True, benchmark=benchmark, allow_tf32=False):
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = matmul


def diff_stats(out: torch.Tensor, reference: torch.Tensor) -> dict:
    """max |out - reference| and that relative to the largest |reference| (both in float64)."""
    out64, ref64 = out.double(), reference.double()
    max_abs = (out64 - ref64).abs().max().item()
    scale = ref64.abs().max().item()
    return {"max_abs": max_abs, "max_rel": max_abs / max(scale, 1e-12), "finite": bool(torch.isfinite(out).all())}


def on_route(route: str, run: Callable[[], torch.Tensor]) -> Callable[[], torch.Tensor]:
    """``run`` with the fused ops' CUDA convolutions on ``route`` (read by the kernels on every call, and
    baked into a CUDA graph when captured); the environment is restored after each call."""

    def call() -> torch.Tensor:
        before = os.environ.get(ROUTE_ENV)
        os.environ[ROUTE_ENV] = route
        try:
            return run()
        finally:
            if before is None:
                del os.environ[ROUTE_ENV]
            else:
                os.environ[ROUTE_ENV] = before

    return call
