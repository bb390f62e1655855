"""The one AOTInductor package a test session compiles (issue 23: CI compiles one small package and
reuses it): the trained demo ResNet-20 at 32x32, fused when the ops are built, from
``resnet-edge compile --backend aoti``, shared by tests/backends and tests/cpp.

Its package cache is a directory of the session (``RESNET_EDGE_CACHE_DIR``), so a compile of the
same graph in a later test is a cache hit and nothing is left in the developer's ~/.cache.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from resnet_edge.ops import fused_ops_status

REPO = Path(__file__).resolve().parents[2]
FUSED = fused_ops_status()[0]


@dataclass(frozen=True)
class AotiBundle:
    path: Path
    stderr: str  # the compile's log: its progress lines
    cache_dir: Path
    args: tuple[str, ...]  # the compile's arguments after --out


_built: dict[str, AotiBundle] = {}


def compile_args(checkpoint: Path) -> tuple[str, ...]:
    return ("--backend", "aoti", "--fp32", "--arch", "resnet20", "--weights", str(checkpoint),
            "--fused" if FUSED else "--no-fused", "--dynamic-batch", "1:4:16")


def run_compile(out: Path, args: tuple[str, ...], cache_dir: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """``resnet-edge compile --out OUT ARGS`` with the session's package cache."""
    environment = {**os.environ, "RESNET_EDGE_CACHE_DIR": str(cache_dir), **(env or {})}
    command = [sys.executable, "-m", "resnet_edge", "compile", "--out", str(out), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=REPO, env=environment)


def aoti_resnet20(tmp_path_factory, checkpoint: Path) -> AotiBundle:
    """The session's package (compiled on first use)."""
    if "resnet20" not in _built:
        root = tmp_path_factory.mktemp("aoti")
        args = compile_args(checkpoint)
        result = run_compile(root / "r20-aoti", args, root / "cache")
        assert result.returncode == 0, result.stderr + result.stdout
        _built["resnet20"] = AotiBundle(root / "r20-aoti", result.stderr, root / "cache", args)
    return _built["resnet20"]
