"""What ``bench`` is asked to do (``BenchOptions``), what it returns (``BenchResult``), and the checks
made before any work."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ...core import defaults
from ...core.device import resolve_device
from ...core.errors import UsageError, require_at_least_one
from ...core.io import check_output_path

REPORT_SCHEMA = "resnet-edge-bench-report"
REPORT_VERSION = 1
BASELINE_VARIANT = "pytorch-fp32"


@dataclass
class BenchOptions:
    """The ``bench`` command's options as plain values (the CLI fills this in)."""

    bundle: Path
    batch_sizes: tuple[int, ...] = defaults.BENCH_BATCH_SIZES
    warmup: int = defaults.BENCH_WARMUP
    iters: int = defaults.BENCH_ITERS
    threads: int | None = None
    report: Path | None = None  # the JSON report (data, written by the pipeline)
    device: str = defaults.DEVICE
    baseline: bool = True
    cuda_graphs: bool = False
    rounds: int = defaults.BENCH_ROUNDS
    memory: bool = True
    runtimes: bool = True  # also time the bundle's model under every other installed CPU runtime
    profile: bool = False  # also a per-block time table from the runtime's own profiler (``profile``)
    command: str | None = None


@dataclass
class BenchResult:
    """The report (schema ``resnet-edge-bench-report``) and the files written, by kind (``report``)."""

    report: dict
    written: dict[str, Path] = field(default_factory=dict)


def parse_batch_sizes(text: str) -> tuple[int, ...]:
    """``"1,8,32"`` -> (1, 8, 32); a ``UsageError`` for anything else."""
    parts = [part.strip() for part in str(text).split(",") if part.strip()]
    if not parts or not all(part.isdigit() and int(part) >= 1 for part in parts):
        raise UsageError(f"--batch-sizes {text!r}: expected positive integers separated by commas, e.g. 1,8,32")
    return tuple(dict.fromkeys(int(part) for part in parts))


def check_options(options: BenchOptions) -> None:
    """Refuse, with a ``UsageError``, options that cannot work; nothing is loaded or written."""
    if not options.batch_sizes or any(not isinstance(b, int) or b < 1 for b in options.batch_sizes):
        raise UsageError(f"--batch-sizes must be positive integers, got {options.batch_sizes}")
    if options.warmup < 0:
        raise UsageError(f"--warmup cannot be negative, got {options.warmup}")
    require_at_least_one({"--iters": options.iters, "--threads": options.threads, "--rounds": options.rounds})
    resolve_device(options.device)
    check_output_path(options.report, "--report")
