"""``run_bench``: measure a bundle and the eager FP32 baseline, as a straight sequence of steps."""

from __future__ import annotations

import logging
import time
from contextlib import ExitStack
from functools import partial
from typing import Callable

import torch

from ...bundle import load as load_bundle
from ...bundle import read_manifest
from ...core.device import resolve_device
from ...core.io import write_json
from .conditions import coefficient_of_variation, condition_warnings, finish_conditions, read_conditions
from .cudagraphs import graph_variants
from .memory import HostMemory, MemoryFigures, measure_memory
from .options import BenchOptions, BenchResult, check_options
from .profile import profile_section
from .report import add_ratios, build_report, result_entry
from .resident import raw_fused_variant, raw_fused_wanted, time_resident
from .timing import time_rounds, warm_up
from .variants import ForeignRuntime, Variant, bundle_variant, eager_variant, example_batch, foreign_runtimes

log = logging.getLogger(__name__)


def run_bench(options: BenchOptions) -> BenchResult:
    """Measure every variant at every batch size, write the JSON report (``options.report``), return it.

    ``options.threads`` applies for the run only: the caller's thread count is restored afterwards.
    """
    check_options(options)
    threads = torch.get_num_threads()
    if options.threads is not None:
        torch.set_num_threads(options.threads)  # before loading: ONNX Runtime sessions take this count
    try:
        return _run(options)
    finally:
        torch.set_num_threads(threads)


def _run(options: BenchOptions) -> BenchResult:
    started = time.time()
    conditions = read_conditions()  # before anything loads: the load average of the host as found
    manifest = read_manifest(options.bundle)
    cuda = _use_cuda(options.device, manifest)
    shape = tuple(manifest["input"]["shape"][1:])
    makers = _variant_makers(options, manifest, cuda)
    foreign = foreign_runtimes(options.bundle, manifest) if options.runtimes and not cuda else []
    host = HostMemory()
    # Phase 1: memory, one variant loaded at a time.
    memory = measure_memory(makers + [runtime.load for runtime in foreign], options.batch_sizes, shape, cuda, host) if options.memory else {}
    # Phase 2: timing, every variant loaded, rounds alternating between them; other runtimes each in a process of its own.
    failed: dict[str, str] = {}
    with ExitStack() as workers:
        variants = _load_variants(makers, options.cuda_graphs, cuda, shape) + _start_foreign(foreign, workers, failed)
        log.info(
            "benchmarking %s at batch sizes %s (%d warm-up, %d timed iterations each, %d thread(s))",
            ", ".join(v.name for v in variants), ", ".join(map(str, options.batch_sizes)),
            options.warmup, options.iters, torch.get_num_threads(),
        )  # fmt: skip
        results = _measure(variants, options, shape, cuda, memory, host.kind, failed)
    finish_conditions(conditions)
    add_ratios(results)
    report = build_report(options, manifest, cuda, results, failed, started)
    report["conditions"], report["warnings"] = conditions, condition_warnings(conditions, results)
    if options.profile:  # after the timing: the profiler's overhead must not touch the sweep
        report["profile"] = profile_section(options, manifest)
    for warning in report["warnings"]:
        log.warning(warning)
    written = {"report": write_json(options.report, report)} if options.report is not None else {}
    return BenchResult(report, written)


def _use_cuda(requested: str, manifest: dict) -> bool:
    """Run on the GPU: when asked to, or (``auto``) for a GPU-target bundle when a GPU is visible."""
    if resolve_device(requested).type != "cuda":
        return False
    if requested != "auto":
        return True
    return manifest.get("target") != "cpu" or (manifest.get("requires") or {}).get("device") == "cuda"


def _variant_makers(options: BenchOptions, manifest: dict, cuda: bool) -> list[Callable[[], Variant]]:
    """Loaders of the variants timed in this process, baseline first; each call loads a fresh one (memory
    is measured per load)."""
    makers: list[Callable[[], Variant]] = []
    device = resolve_device(options.device) if cuda else torch.device("cpu")
    if options.baseline:
        makers.append(partial(eager_variant, manifest, device))
    makers.append(lambda: bundle_variant(load_bundle(options.bundle, device=options.device)))
    if cuda and raw_fused_wanted(manifest):  # what the bundle adds on top of the op, device-resident
        makers.append(partial(raw_fused_variant, manifest, device))
    return makers


def _load_variants(makers: list[Callable[[], Variant]], cuda_graphs: bool, cuda: bool, shape: tuple[int, ...]) -> list[Variant]:
    variants = [make() for make in makers]
    if cuda_graphs:
        if not cuda:
            log.info("note: --cuda-graphs needs a CUDA GPU; measuring without")
        else:
            variants += graph_variants(variants, shape)
    return variants


def _start_foreign(foreign: list[ForeignRuntime], workers: ExitStack, failed: dict[str, str]) -> list[Variant]:
    """The other runtimes' variants, each built in a process of its own (started together, closed with
    ``workers``); one whose runtime cannot read the model is left out, one that fails to load is in ``failed``."""
    started = [runtime.start(torch.get_num_threads()) for runtime in foreign]
    variants = []
    for variant, runner in started:
        workers.callback(runner.close)
        if runner.wait_ready():
            variants.append(variant)
        elif runner.status == "error":
            failed[variant.name] = runner.reason
            log.warning("%s failed to load and is left out: %s", variant.name, runner.reason)
    return variants


def _measure(variants: list[Variant], options: BenchOptions, shape: tuple[int, ...], cuda: bool, memory: MemoryFigures,
             memory_kind: str, failed: dict[str, str]) -> list[dict]:
    """One report entry per variant that runs, at every batch size; the variants left out go to ``failed``, with why."""
    results: list[dict] = []
    for size in options.batch_sizes:
        batch = example_batch(size, shape)
        active = warm_up(variants, batch, options.warmup, failed)
        wall, gpu = time_rounds(active, batch, options.iters, options.rounds, cuda)
        resident = time_resident(active, batch, options.warmup, options.iters, options.rounds) if cuda else {}
        results += [{**result_entry(v, size, wall[v.name], gpu[v.name], memory, memory_kind, resident.get(v.name)),
                     "cv": coefficient_of_variation(wall[v.name])} for v in active]
    return results
