"""Fixtures of the fused-op tests."""

from __future__ import annotations

import warnings

import pytest
import torch


@pytest.fixture(params=["onednn", "aten"])
def cpu_path(request):
    """Run a test once on the oneDNN kernels and once on the plain ATen fallback."""
    with warnings.catch_warnings():
        # flags() also resets oneDNN's TF32 switch, which warns on builds without Intel GPU support.
        warnings.filterwarnings("ignore", message="TF32 acceleration on top of oneDNN")
        with torch.backends.mkldnn.flags(enabled=request.param == "onednn"):
            yield request.param
