"""Device-resident latency on CUDA: each variant's work with its input already on the GPU and its output
left there, timed with CUDA events, so the host copies show against the host-to-host figures.

For the bundle that is ``Bundle.device_runner`` (padding to the artifact's batch, the artifact's own
casts and layout changes); for eager PyTorch and the raw fused model the module alone; for a
``--cuda-graphs`` variant the graph replay alone. The raw fused model (``fused-PRECISION``: the bundle's
arch through ``fuse_model``, in the bundle's precision, fed channels_last in that precision, as
``benchmarks/fused_ops_gpu.py`` runs it) is measured beside a fused bundle, so one report says what the
bundle adds on top of the op.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Callable

import torch

from ...core.timing import Samples, split, time_interleaved
from ...core.timing import warm_up as warm_up_runners
from ...fuse import fuse_model
from ...models import create_model
from .variants import DeviceEntry, Variant, inference

log = logging.getLogger(__name__)

RAW_FUSED_PREFIX = "fused-"
DTYPES = {"fp32": torch.float32, "fp16": torch.float16}


def raw_fused_wanted(manifest: dict) -> bool:
    """Whether to measure the raw fused model beside this bundle: a fused FP32/FP16 one."""
    return bool(manifest.get("fused")) and manifest.get("precision") in DTYPES


def raw_fused_variant(manifest: dict, device: torch.device) -> Variant:
    """The bundle's arch as ``fuse_model`` makes it, in the bundle's precision, channels_last on ``device``
    (random weights, as the baseline: speed does not depend on them)."""
    dtype = DTYPES[manifest["precision"]]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = create_model(manifest["arch"], num_classes=manifest["num_classes"], shortcut=manifest.get("shortcut")).eval()
    fused = fuse_model(model).to(device=device, dtype=dtype, memory_format=torch.channels_last)  # folded in float, then cast
    layout = partial(torch.Tensor.to, device=device, dtype=dtype, memory_format=torch.channels_last)
    return Variant(f"{RAW_FUSED_PREFIX}{manifest['precision']}",
                   f"the raw fused model (fuse_model), {manifest['precision']}, fed channels_last {manifest['precision']}",
                   device.type, inference(lambda batch: fused(layout(batch)).float().cpu()),
                   resident=DeviceEntry(layout, inference(fused)))


def _call_on(run: Callable[[torch.Tensor], torch.Tensor], prepared: torch.Tensor, _host_batch: torch.Tensor) -> torch.Tensor:
    """``run`` on its own prepared device input (the loop hands every runner the host batch; it is not used)."""
    return run(prepared)


def time_resident(variants: list[Variant], batch: torch.Tensor, warmup: int, iters: int, rounds: int) -> Samples:
    """CUDA-event milliseconds of each variant's device-resident work (``Variant.resident``), ``iters``
    calls in alternating rounds; the input prepared once beforehand, untimed. The only host sync is
    the one after each call's end event. A variant whose device-resident work fails is left out, with a warning."""
    entries = {variant.name: variant.resident for variant in variants if variant.resident is not None}
    failed: dict[str, str] = {}
    runners = {}
    for name, entry in entries.items():
        try:
            runners[name] = partial(_call_on, entry.run, entry.prepare(batch))
        except Exception as error:  # a graph that would not capture at this size
            failed[name] = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
            log.warning("%s: no device-resident figure at batch %d: %s", name, batch.shape[0], failed[name])
    ran = warm_up_runners(runners, batch, lambda _name: max(warmup, 1), runners, failed)
    _, device_ms = time_interleaved({name: runners[name] for name in ran}, batch, split(iters, rounds), ran)
    return device_ms
