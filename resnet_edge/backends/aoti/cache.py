"""Compiled packages kept by what they were compiled from, so compiling the same graph again is a copy.

The key is the sha256 of the exported program as ``torch.export.save`` writes it (graph, weights,
batch range: deterministic for the same model and settings) and of everything else that changes
the compiled code: the Inductor settings, torch version, C++ compiler, CPU architecture and
instruction-set extensions (Inductor compiles with ``-march=native``), GPU compute capability.

Entries live in ``$RESNET_EDGE_CACHE_DIR/aoti`` (default ``~/.cache/resnet-edge/aoti``, or under
``$XDG_CACHE_HOME``); ``RESNET_EDGE_AOTI_CACHE=0`` turns the cache off. An entry is written to a
temporary name and renamed into place (``core.io.atomic_path``), so an interrupted compile leaves
none behind; the least recently used entries beyond ``MAX_BYTES`` are removed after each store.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import warnings
from pathlib import Path

import torch

from ...core.io import atomic_path

log = logging.getLogger(__name__)

MAX_BYTES = 4 << 30  # a ResNet-152 package is about 240 MB
SUFFIX = ".pt2"
FORMAT = 1  # bump when what the key covers changes


def cache_dir() -> Path | None:
    """Where packages are kept, or None when ``RESNET_EDGE_AOTI_CACHE=0``."""
    if os.environ.get("RESNET_EDGE_AOTI_CACHE", "1").strip().lower() in ("0", "off", "false", "no"):
        return None
    root = os.environ.get("RESNET_EDGE_CACHE_DIR")
    if not root:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "resnet-edge"
    return Path(root).expanduser() / "aoti"


def package_key(program: torch.export.ExportedProgram, settings: dict) -> str:
    """The cache key of compiling ``program`` with ``settings`` (JSON-able: configs, versions, host facts)."""
    digest = hashlib.sha256()
    stream = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "No complete tensor found in the group": about GPU weights, harmless here
        torch.export.save(program, stream)
    digest.update(stream.getbuffer())
    digest.update(json.dumps({"format": FORMAT, **settings}, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def fetch(key: str, destination: Path) -> bool:
    """Copy the package stored under ``key`` to ``destination``; False when there is none."""
    root = cache_dir()
    entry = root / f"{key}{SUFFIX}" if root else None
    if entry is None or not entry.is_file():
        return False
    shutil.copyfile(entry, destination)
    os.utime(entry)  # most recently used
    return True


def store(key: str, package: Path) -> None:
    """Keep a copy of ``package`` under ``key``; a cache that cannot be written is skipped with a warning."""
    root = cache_dir()
    if root is None:
        return
    try:
        with atomic_path(root / f"{key}{SUFFIX}") as temporary:
            shutil.copyfile(package, temporary)
        _prune(root)
    except Exception as error:  # the bundle is fine without the cache
        log.warning(f"aoti: could not keep the package in the cache {root} ({error})")


def _prune(root: Path) -> None:
    """Remove the least recently used entries until the cache holds at most ``MAX_BYTES``."""
    entries = sorted(root.glob(f"*{SUFFIX}"), key=lambda path: path.stat().st_mtime, reverse=True)
    total = 0
    for entry in entries:
        total += entry.stat().st_size
        if total > MAX_BYTES:
            entry.unlink(missing_ok=True)
