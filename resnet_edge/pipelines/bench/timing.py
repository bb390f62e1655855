"""``bench``'s use of the shared timing loop (``core.timing``): variants in, samples per variant out.

A CUDA-graph variant that cannot be captured is left out, not fatal; it is captured on its first call,
so it is warmed up at least once.
"""

from __future__ import annotations

import torch

from ...core.timing import Samples, split, time_interleaved
from ...core.timing import warm_up as warm_up_runners
from .cudagraphs import is_graph_variant
from .variants import Variant


def warm_up(variants: list[Variant], batch: torch.Tensor, warmup: int, failed: dict[str, str]) -> list[Variant]:
    """Run each variant ``warmup`` times; return those that ran.

    A CUDA graph that cannot be captured is recorded in ``failed`` and left out; the bundle or the
    baseline failing is a ``CheckFailed``.
    """
    graphs = {variant.name for variant in variants if is_graph_variant(variant)}
    runners = {variant.name: variant.run for variant in variants if variant.name not in failed}
    ran = warm_up_runners(runners, batch, lambda name: max(warmup, 1 if name in graphs else 0), graphs, failed)
    return [variant for variant in variants if variant.name in ran]


def time_rounds(active: list[Variant], batch: torch.Tensor, iters: int, rounds: int, cuda: bool) -> tuple[Samples, Samples]:
    """(host-to-result ms, CUDA-event ms) per variant; ``iters`` each, split into alternating rounds."""
    on_cuda = {variant.name for variant in active if cuda and variant.device == "cuda"}
    return time_interleaved({variant.name: variant.run for variant in active}, batch, split(iters, rounds), on_cuda)
