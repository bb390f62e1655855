"""What every runtime's block probe and profiler share: the probe type, the eager-module probe, and how
profiled kernels are charged to rows (a residual block such as ``layer2.1``, or a top-level module such
as ``conv1``/``fc``), in execution order. The runtimes' own readers are in ``backends/<runtime>/``;
the rules per runtime are in docs/block-readings.md.
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

import torch

# NCHW float32 CPU batch -> {block name: float32 CPU tensor}, in block order.
Probe = Callable[[torch.Tensor], dict[str, torch.Tensor]]

HEAD = "fc"
STEM = "conv1"
WARMUP = 3


def module_probe(module: torch.nn.Module, blocks: Sequence[str], device: torch.device | str = "cpu") -> Probe:
    """A probe of an eager module (the FP32 reference, a fake-quant simulator): forward hooks on its blocks."""
    captured: dict[str, torch.Tensor] = {}
    for block in blocks:
        module.get_submodule(block).register_forward_hook(
            lambda _m, _i, output, name=block: captured.__setitem__(name, output.detach().float().cpu().clone()))

    def run(batch: torch.Tensor) -> dict[str, torch.Tensor]:
        captured.clear()
        with torch.no_grad():
            module(batch.to(device, torch.float32))
        return {block: captured[block] for block in blocks}

    return run


def scope_block(modules: Sequence[str], blocks: Sequence[str]) -> str | None:
    """The row of an op inside ``modules`` (outermost first): the deepest residual block, else the top-level module."""
    for module in reversed(modules):
        if module in blocks:
            return module
    return modules[0] if modules else None


def module_of_parameter(name: str, blocks: Sequence[str]) -> str | None:
    """The row of a parameter named like ``layer1.0.conv1.weight`` (None for other names)."""
    parts = name.split(".")
    if len(parts) < 2:
        return None
    return scope_block([".".join(parts[:i]) for i in range(1, len(parts))], blocks)


def lookup(name: str, table: dict[str, str]) -> str | None:
    """``table``'s row for a runtime kernel name, stripping ``_suffix`` parts until one is known."""
    candidate = name
    while candidate:
        if candidate in table:
            return table[candidate]
        if "_" not in candidate:
            return None
        candidate = candidate.rsplit("_", 1)[0]
    return None


def charge(events: Iterable[tuple[str | None, float]]) -> dict[str, float]:
    """Sum ``(row or None, duration)`` events per row; a None row goes to the previous row (the next one at the start)."""
    totals: dict[str, float] = {}
    pending = 0.0
    current: str | None = None
    for row, duration in events:
        if row is None:
            if current is None:
                pending += duration
            else:
                totals[current] += duration
            continue
        current = row
        totals[current] = totals.get(current, 0.0) + duration + pending
        pending = 0.0
    return totals


def mean_ms(totals: dict[str, float], runs: int, unit_ms: float) -> dict[str, float]:
    """Totals in ``unit_ms`` milliseconds over ``runs`` runs -> milliseconds per run."""
    return {row: total * unit_ms / max(runs, 1) for row, total in totals.items()}
