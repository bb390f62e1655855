"""The TensorRT builder's timing cache, kept beside the bundle per target, TensorRT version and GPU.

Builds spend most of their time timing kernel tactics; the timing cache records the winners so the
next build on the same GPU and TensorRT skips that work (microsoft/onnxruntime#14767: 108 s -> 9.4 s).
A cache is only valid for the TensorRT version and GPU model that wrote it, hence one file per
(target, TensorRT version, compute capability), in ``.tensorrt-timing-cache/`` next to the bundle
directory, where rebuilding the same bundle (``--force``) or a sibling bundle finds it.
"""

from __future__ import annotations

import re
from pathlib import Path

CACHE_DIR = ".tensorrt-timing-cache"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-") or "unknown"


def timing_cache_path(out_dir: Path, target: str, tensorrt_version: str | None, gpu: dict | None) -> Path:
    """The cache file for a build writing ``out_dir`` (the bundle, or its staging directory beside it)."""
    capability = (gpu or {}).get("compute_capability") or "unknown"
    name = f"{_slug(target)}-trt{_slug(tensorrt_version or 'unknown')}-sm{_slug(str(capability))}.cache"
    return Path(out_dir).resolve().parent / CACHE_DIR / name
