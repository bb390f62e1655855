"""``bench --scenario``: MLPerf Inference's three scenarios, run on a loaded bundle.

- ``single-stream``: one image per query, each sent when the last completes; the metric is the 90th
  percentile latency over at least 1024 queries and 60 s (MLPerf's minimums).
- ``offline``: every image available at once; the metric is throughput at the best batch the
  artifact accepts (each candidate batch timed for the minimum duration / its share of it).
- ``server``: queries arrive as a Poisson process at ``target_qps`` and are served in order by one
  instance; the metric is the 99th percentile latency (arrival to answer, queueing included) and
  whether it held under ``latency_bound_ms``.
``quick`` scales the minimums down (64 queries, 2 s); the result then says ``scaled_down: true`` and
``valid: false``: such a run is for smoke tests, not for reporting.
"""

from __future__ import annotations

import logging
import random
import time
from contextlib import nullcontext
from dataclasses import dataclass

import torch

from ...bundle import Bundle
from ...bundle import load as load_bundle
from ...core import hostinfo
from ...core.errors import UsageError
from ...core.io import check_output_path, write_json
from ...core.timing import stats
from .conditions import condition_warnings, finish_conditions, read_conditions
from .energy import PowerSampler

log = logging.getLogger(__name__)

SCENARIOS = ("single-stream", "offline", "server")


@dataclass(frozen=True)
class Minimums:
    """How much a scenario must run: queries and seconds."""

    queries: int = 1024
    seconds: float = 60.0


FULL, QUICK = Minimums(), Minimums(64, 2.0)


@dataclass
class ScenarioOptions:
    """What ``bench --scenario`` was asked for."""

    scenario: str
    quick: bool = False
    target_qps: float | None = None
    latency_bound_ms: float = 100.0
    energy: bool = False
    seed: int = 0


def check_scenario(options: ScenarioOptions) -> None:
    """Usage errors before any work."""
    if options.scenario not in SCENARIOS:
        raise UsageError(f"--scenario must be one of {', '.join(SCENARIOS)}")
    if options.scenario == "server" and (options.target_qps is None or options.target_qps <= 0):
        raise UsageError("--scenario server needs --target-qps (queries per second, > 0)")
    if options.latency_bound_ms <= 0:
        raise UsageError("--latency-bound-ms must be positive")


def _single_stream(bundle: Bundle, limits: Minimums) -> tuple[dict, int]:
    image = torch.randn(1, *bundle.input_shape)
    latencies, started = [], time.perf_counter()
    while len(latencies) < limits.queries or time.perf_counter() - started < limits.seconds:
        begin = time.perf_counter()
        bundle.predict(image)
        latencies.append((time.perf_counter() - begin) * 1e3)
    figures = stats(latencies)
    return {"queries": len(latencies), "seconds": round(time.perf_counter() - started, 3), "p50_ms": round(figures["p50"], 4),
            "p90_ms": round(figures["p90"], 4), "p99_ms": round(figures["p99"], 4), "metric": "p90_ms"}, len(latencies)


def offline_batches(bundle: Bundle) -> list[int]:
    """Candidate batches: powers of two within the artifact's range, and its ends."""
    low, high = bundle.batch.min, bundle.batch.max
    candidates = {low, high} | {1 << k for k in range(12) if low <= 1 << k <= high}
    return sorted(candidates)


def _offline(bundle: Bundle, limits: Minimums) -> tuple[dict, int]:
    candidates = offline_batches(bundle)
    share = limits.seconds / len(candidates)
    per_batch, images = {}, 0
    for size in candidates:
        batch = torch.randn(size, *bundle.input_shape)
        bundle.predict(batch)  # warm-up at this shape
        count, started = 0, time.perf_counter()
        while count < limits.queries or time.perf_counter() - started < share:
            bundle.predict(batch)
            count += size
        per_batch[size] = round(count / (time.perf_counter() - started), 2)
        images += count
    best = max(per_batch, key=per_batch.get)
    return {"throughput_by_batch": per_batch, "best_batch": best, "throughput": per_batch[best], "metric": "throughput"}, images


def _server(bundle: Bundle, limits: Minimums, qps: float, bound_ms: float, seed: int) -> tuple[dict, int]:
    rng = random.Random(seed)
    count = max(limits.queries, int(limits.seconds * qps))
    arrivals, clock = [], 0.0
    for _ in range(count):
        clock += rng.expovariate(qps)
        arrivals.append(clock)
    image = torch.randn(1, *bundle.input_shape)
    bundle.predict(image)
    latencies, origin = [], time.perf_counter()
    for arrival in arrivals:
        wait = origin + arrival - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        bundle.predict(image)
        latencies.append((time.perf_counter() - origin - arrival) * 1e3)  # queueing included
    figures = stats(latencies)
    return {"queries": count, "target_qps": qps, "achieved_qps": round(count / (time.perf_counter() - origin), 2),
            "p50_ms": round(figures["p50"], 4), "p99_ms": round(figures["p99"], 4), "latency_bound_ms": bound_ms,
            "bound_held": figures["p99"] <= bound_ms, "metric": "p99_ms"}, count


def run_scenario(bundle: Bundle, options: ScenarioOptions) -> dict:
    """Run one scenario on ``bundle``; the report section ``scenario``."""
    check_scenario(options)
    limits = QUICK if options.quick else FULL
    sampler = PowerSampler() if options.energy else nullcontext()
    with sampler:
        if options.scenario == "single-stream":
            result, images = _single_stream(bundle, limits)
        elif options.scenario == "offline":
            result, images = _offline(bundle, limits)
        else:
            result, images = _server(bundle, limits, options.target_qps, options.latency_bound_ms, options.seed)
    result.update(scenario=options.scenario, scaled_down=options.quick, valid=not options.quick,
                  min_queries=limits.queries, min_seconds=limits.seconds, images=images)
    if options.energy:
        joules = sampler.joules
        result["energy"] = {"joules": round(joules, 3) if joules is not None else None, "mean_watts": sampler.mean_watts,
                            "joules_per_image": round(joules / images, 5) if joules is not None and images else None,
                            "note": None if joules is not None else "no INA3221 rails on this host"}
    return result


def scenario_bench(bundle_dir, device: str, options: ScenarioOptions, threads: int | None = None, report_path=None,
                   command: str | None = None) -> dict:
    """``bench --scenario``: load the bundle, record the conditions, run the scenario, write the JSON report."""
    check_scenario(options)
    check_output_path(report_path, "--report")
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        conditions = read_conditions()
        loaded = load_bundle(bundle_dir, device=device)
        result = run_scenario(loaded, options)
        finish_conditions(conditions)
    finally:
        torch.set_num_threads(previous)
    warnings = condition_warnings(conditions, [])
    for warning in warnings:
        log.warning(warning)
    report = {"schema": "resnet-edge-bench-scenario", "schema_version": 1, "command": command, "bundle": str(bundle_dir),
              "scenario": result, "conditions": conditions, "warnings": warnings, "versions": hostinfo.library_versions()}
    if report_path is not None:
        write_json(report_path, report)
    return report
