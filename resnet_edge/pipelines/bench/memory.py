"""What a variant adds to a process: host RSS growth (from ``/proc``) and, on CUDA, device memory.

``peak_mem_mb`` is the growth of host RSS (peak, from ``VmHWM`` after resetting it through
``/proc/self/clear_refs``) from before the variant is loaded to the peak of running it, measured with
one variant loaded at a time; on CUDA, the growth of device memory in use at load plus the peak of
PyTorch's allocator while running.
"""

from __future__ import annotations

import gc
import resource
import sys
from pathlib import Path
from typing import Callable, Iterable

import torch

from .variants import Variant, example_batch

MEMORY_ITERS = 2
CUDA_MEMORY_KIND = "cuda (device in use at load + allocator peak)"


def _read_status(key: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0  # kB -> MiB
    except (OSError, ValueError, IndexError):
        pass
    return None


class HostMemory:
    """Host RSS now and its peak since ``reset()`` (Linux: VmRSS/VmHWM; elsewhere the lifetime peak)."""

    def __init__(self) -> None:
        self.resettable = self._reset()
        self.kind = "host RSS growth (VmHWM)" if self.resettable else "host RSS growth (lifetime ru_maxrss)"

    @staticmethod
    def _reset() -> bool:
        try:
            with open("/proc/self/clear_refs", "w") as handle:
                handle.write("5")
            return _read_status("VmHWM") is not None
        except OSError:
            return False

    def reset(self) -> None:
        """Start a new peak (where the kernel allows it)."""
        if self.resettable:
            self._reset()

    @staticmethod
    def current() -> float:
        """Resident set size now, MiB."""
        value = _read_status("VmRSS")
        if value is not None:
            return value
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0

    def peak(self) -> float:
        """Peak resident set size since ``reset()`` (or the process's lifetime), MiB."""
        if self.resettable:
            value = _read_status("VmHWM")
            if value is not None:
                return value
        scale = 1024.0 * 1024.0 if sys.platform == "darwin" else 1024.0  # macOS reports bytes
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def device_used_mb() -> float:
    """CUDA device memory in use (by any process), MiB."""
    free, total = torch.cuda.mem_get_info()
    return (total - free) / 2**20


MemoryFigures = dict[tuple[str, int], dict]  # (variant name, batch) -> {"host_mb", "load_host_mb"[, "device_mb"]}


def measure_memory(
    makers: Iterable[Callable[[], Variant | None]], batch_sizes: Iterable[int], shape: tuple[int, ...], cuda: bool, host: HostMemory
) -> MemoryFigures:
    """Load one variant at a time, run it at every batch size, and record what it added (a maker that
    returns None, another runtime that cannot read the model, is left out)."""
    figures: MemoryFigures = {}
    for make in makers:
        gc.collect()
        before = host.current()
        device_before = device_used_mb() if cuda else 0.0
        variant = make()
        if variant is None:
            continue
        loaded_rss = host.current()
        device_loaded = device_used_mb() if cuda else 0.0
        for size in batch_sizes:
            entry = _run_peak(variant, example_batch(size, shape), cuda, host, before, loaded_rss)
            if cuda:
                entry["device_mb"] = round(max(0.0, device_loaded - device_before) + entry.pop("run_device_mb"), 1)
            figures[(variant.name, size)] = entry
        del variant  # unload before the next one is measured
        gc.collect()
        if cuda:
            torch.cuda.empty_cache()
    return figures


def _run_peak(variant: Variant, batch: torch.Tensor, cuda: bool, host: HostMemory, before: float, loaded_rss: float) -> dict:
    """Host peak (and the CUDA allocator's peak) of a few runs of ``variant`` on ``batch``."""
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        allocated = torch.cuda.memory_allocated()
    host.reset()
    for _ in range(MEMORY_ITERS):
        variant.run(batch)
    host_peak = max(0.0, max(host.peak(), loaded_rss) - before)  # 0 if the allocator returned memory meanwhile
    entry = {"host_mb": round(host_peak, 1), "load_host_mb": round(max(0.0, loaded_rss - before), 1)}
    if cuda:
        torch.cuda.synchronize()
        entry["run_device_mb"] = max(0.0, (torch.cuda.max_memory_allocated() - allocated) / 2**20)
    return entry
