"""Bundles for the C++ app's tests, compiled the way a user does: ``python -m resnet_edge compile``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TORCHSCRIPT_FP32 = ("--fp32", "--backend", "torchscript")


def compile_bundle(out: Path, *args: str, timeout: float = 900) -> Path:
    """``resnet-edge compile --out OUT ARGS...`` in a subprocess; the bundle directory (the test fails if it fails)."""
    command = [sys.executable, "-m", "resnet_edge", "compile", "--out", str(out), *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=REPO)
    assert result.returncode == 0, result.stderr + result.stdout
    return out
