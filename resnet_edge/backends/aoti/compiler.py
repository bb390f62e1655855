"""Exported program -> ``model.pt2``: AOTInductor with progress lines, the host's cores and a cache.

Phases, each logged as it starts and timed: export (``graph.export``, by the caller), lowering
(Inductor turns the graph into C++ or Triton kernels plus a C++ wrapper) and the C++ compile (the
wrapper and the kernels, then the link). Inductor does not announce the C++ phase through an API; its
``output_code`` log record "AOT wrapper code written to" marks the end of lowering, so a handler on
that one logger (not propagated, nothing printed) turns it into our progress line.

Parallelism: ``compile_threads`` is every core: Inductor compiles Triton kernels (GPU) in that many
workers. On the CPU, torch 2.14 builds the wrapper and the kernel file one after the other, each
one ``g++`` process; the wrapper dominates (about 4.5 s of a ResNet-50's C++ phase here), so there
is little left to split. ``cpp.dynamic_threads`` makes the kernels use the OpenMP thread count at
run time (``--threads``, ``torch.set_num_threads``) rather than the compiling host's core count.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Iterator

import torch
import torch._inductor
from torch._inductor import config as inductor_config

from . import cache
from .host import cpu_isa_flags

log = logging.getLogger(__name__)

# Inductor's "output_code" artifact logger in codecache (not propagated to torch's handlers).
_OUTPUT_CODE_LOGGER = "torch._inductor.codecache.__output_code"
_LOWERED = "AOT wrapper code written to"
_CPP_EXTENSION_LOGGER = "torch.utils.cpp_extension"


def inductor_settings(device: torch.device) -> dict:
    """The Inductor config every package is compiled with."""
    settings = {"compile_threads": max(1, os.cpu_count() or 1)}
    if device.type == "cpu":
        settings["cpp.dynamic_threads"] = True
    return settings


def cxx_compiler() -> str | None:
    """The C++ compiler Inductor will call (``$CXX`` or g++), as found on PATH; None without one."""
    cxx = inductor_config.cpp.cxx
    candidates = cxx if isinstance(cxx, (list, tuple)) else (cxx,)
    for candidate in candidates:
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    return None


def compiler_identity(cxx: str) -> str:
    """The first line of ``cxx --version`` (part of the cache key: another compiler, another package)."""
    try:
        result = subprocess.run([cxx, "--version"], capture_output=True, text=True, timeout=30)
        return (result.stdout.splitlines() or ["?"])[0]
    except (OSError, subprocess.SubprocessError):
        return "?"


class _PhaseWatch(logging.Handler):
    """Turns Inductor's end-of-lowering record into the C++-compile progress line; remembers when."""

    def __init__(self, cxx: str) -> None:
        super().__init__(logging.INFO)
        self.cxx = cxx
        self.cpp_started: float | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if self.cpp_started is None and str(record.msg).startswith(_LOWERED):
            self.cpp_started = time.monotonic()
            log.info(f"aoti: compiling the C++ wrapper and kernels with {Path(self.cxx).name}")


@contextlib.contextmanager
def _watch_phases(cxx: str, device: torch.device) -> Iterator[_PhaseWatch]:
    logger = logging.getLogger(_OUTPUT_CODE_LOGGER)
    # On the CPU, torch.utils.cpp_extension warns "No CUDA runtime is found" while Inductor collects
    # its compile flags: true of this host and irrelevant to a CPU package, so not shown.
    extension = logging.getLogger(_CPP_EXTENSION_LOGGER)
    watch = _PhaseWatch(cxx)
    levels = logger.level, extension.level
    logger.addHandler(watch)
    logger.setLevel(logging.INFO)
    if device.type == "cpu":
        extension.setLevel(logging.ERROR)
    try:
        yield watch
    finally:
        logger.removeHandler(watch)
        logger.setLevel(levels[0])
        extension.setLevel(levels[1])


def compile_package(program: torch.export.ExportedProgram, package: Path, device: torch.device, cxx: str) -> dict:
    """Compile ``program`` into ``package`` (a ``.pt2`` path), from the cache when it holds the same.

    Returns what the manifest records: seconds per phase, whether the cache answered, the settings.
    """
    settings = inductor_settings(device)
    key_facts = {
        "inductor": {k: v for k, v in settings.items() if k != "compile_threads"},
        "torch": torch.__version__,
        "cxx": compiler_identity(cxx),
        "cpu_isa": cpu_isa_flags(),
        "device": str(device.type),
        "capability": list(torch.cuda.get_device_capability(device)) if device.type == "cuda" else None,
    }
    key = cache.package_key(program, key_facts)
    if cache.fetch(key, package):
        log.info(f"aoti: the same graph and settings were compiled before: package {key[:12]} from {cache.cache_dir()}")
        return {"cache": "hit", "key": key, "inductor": settings}
    started = time.monotonic()
    log.info(f"aoti: lowering the graph with Inductor for {device.type} ({settings['compile_threads']} compile threads)")
    with _watch_phases(cxx, device) as watch:
        torch._inductor.aoti_compile_and_package(program, package_path=str(package), inductor_configs=dict(settings))
    finished = time.monotonic()
    cpp_started = watch.cpp_started or finished
    phases = {"lowering": round(cpp_started - started, 1), "cpp_compile": round(finished - cpp_started, 1)}
    log.info(f"aoti: compiled in {finished - started:.1f} s (lowering {phases['lowering']} s, C++ {phases['cpp_compile']} s)")
    cache.store(key, package)
    return {"cache": "miss", "key": key, "inductor": settings, "seconds": phases}
