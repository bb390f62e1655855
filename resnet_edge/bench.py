"""``resnet-edge bench``: latency, throughput and memory of a bundle, against eager FP32 PyTorch.

What is measured is what an application pays: a float32 NCHW batch on the host goes in, float32
logits on the host come out (``Bundle.predict``; host-to-device copies, padding to the artifact's batch
range and the copy back included). On CUDA every iteration starts after ``torch.cuda.synchronize()``
and is timed with ``time.perf_counter`` (host-to-result) and CUDA events (device time); the result's
copy to the host synchronises. ``--cuda-graphs`` adds, for every variant that runs a torch module on
the GPU, a variant that replays a captured CUDA graph.

In the same run, the eager FP32 PyTorch model of the same architecture (``pytorch-fp32``, BatchNorm
unfolded, exactly as ``model.eval()`` runs it) is measured as the baseline, and every figure is also
given as a ratio to it (``speedup`` = baseline p50 / this p50), so results hold on noisy machines. The
timed iterations are split into rounds that alternate the variants, so slow drifts of a shared machine
hit all of them alike.

Memory: ``peak_mem_mb`` is what the variant adds to a process: the growth of host RSS (peak, from
``VmHWM`` after resetting it through ``/proc/self/clear_refs``) from before the variant is loaded to
the peak of running it, measured with one variant loaded at a time; on CUDA, the growth of device
memory in use at load plus the peak of PyTorch's allocator while running.

The report's schema is documented in ``docs/validate-report.md`` (section "bench report").
"""

from __future__ import annotations

import gc
import math
import os
import resource
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from io import BytesIO
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .core.errors import CheckFailed, UsageError
from .validate import check_output_path, write_atomic, write_json

REPORT_SCHEMA = "resnet-edge-bench-report"
REPORT_VERSION = 1
BASELINE_VARIANT = "pytorch-fp32"
DEFAULT_BATCH_SIZES = (1, 8, 32)
PLOT_FORMATS = ("png", "svg", "pdf")
MEMORY_ITERS = 2


@dataclass
class BenchOptions:
    """The ``bench`` command's options as plain values (the CLI fills this in)."""

    bundle: Path
    batch_sizes: tuple[int, ...] = DEFAULT_BATCH_SIZES
    warmup: int = 10
    iters: int = 100
    threads: int | None = None
    report: Path | None = None
    plot: Path | None = None
    device: str = "auto"
    baseline: bool = True
    cuda_graphs: bool = False
    rounds: int = 5
    memory: bool = True
    command: str | None = None


@dataclass
class BenchResult:
    report: dict
    written: dict[str, Path] = field(default_factory=dict)


def parse_batch_sizes(text: str) -> tuple[int, ...]:
    """``"1,8,32"`` -> (1, 8, 32); a ``UsageError`` for anything else."""
    parts = [part.strip() for part in str(text).split(",") if part.strip()]
    if not parts or not all(part.isdigit() and int(part) >= 1 for part in parts):
        raise UsageError(f"--batch-sizes {text!r}: expected positive integers separated by commas, e.g. 1,8,32")
    sizes = tuple(dict.fromkeys(int(part) for part in parts))
    return sizes


def _check_options(options: BenchOptions) -> None:
    if not options.batch_sizes or any(not isinstance(b, int) or b < 1 for b in options.batch_sizes):
        raise UsageError(f"--batch-sizes must be positive integers, got {options.batch_sizes}")
    if options.warmup < 0:
        raise UsageError(f"--warmup cannot be negative, got {options.warmup}")
    if options.iters < 1:
        raise UsageError(f"--iters must be at least 1, got {options.iters}")
    if options.threads is not None and options.threads < 1:
        raise UsageError(f"--threads must be at least 1, got {options.threads}")
    if options.rounds < 1:
        raise UsageError(f"--rounds must be at least 1, got {options.rounds}")
    if options.device not in ("auto", "cpu", "cuda"):
        raise UsageError(f"unknown device {options.device!r}; use auto, cpu or cuda")
    if options.device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda was asked for, but no CUDA GPU is visible; use --device cpu")
    check_output_path(options.report, "--report")
    check_output_path(options.plot, "--plot")
    if options.plot is not None:
        suffix = Path(options.plot).suffix.lower().lstrip(".")
        if suffix not in PLOT_FORMATS:
            raise UsageError(f"--plot {options.plot}: the file name must end in .{', .'.join(PLOT_FORMATS)}")
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise UsageError("--plot needs matplotlib (pip install -r requirements.txt)") from None


# ---------------------------------------------------------------------------------------- memory


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
        if self.resettable:
            self._reset()

    @staticmethod
    def current() -> float:
        value = _read_status("VmRSS")
        if value is not None:
            return value
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0

    def peak(self) -> float:
        if self.resettable:
            value = _read_status("VmHWM")
            if value is not None:
                return value
        scale = 1024.0 * 1024.0 if sys.platform == "darwin" else 1024.0
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def _device_used_mb() -> float:
    free, total = torch.cuda.mem_get_info()
    return (total - free) / 2**20


# -------------------------------------------------------------------------------------- variants


@dataclass
class Variant:
    """One thing to time: ``run`` takes a host NCHW float32 batch and returns host logits."""

    name: str
    description: str
    device: str
    run: Callable[[torch.Tensor], torch.Tensor]
    module: torch.nn.Module | None = None  # a torch module on CUDA, for --cuda-graphs
    batch_range: tuple[int, int] | None = None  # (min, max) the artifact accepts per call


def _eager_variant(manifest: dict, device: torch.device) -> Variant:
    from .models import create_model

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = create_model(manifest["arch"], num_classes=manifest["num_classes"], shortcut=manifest.get("shortcut"))
    model = model.float().eval().to(device)

    def run(batch: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return model(batch.to(device)).float().cpu()

    return Variant(BASELINE_VARIANT, "eager PyTorch, FP32, BatchNorm unfolded", str(device), run, model if device.type == "cuda" else None)


def _predictor_device(predictor, manifest: dict) -> str:
    """Where the bundle's predictor runs: ``cuda`` or ``cpu``, from what the predictor exposes."""
    if (manifest.get("requires") or {}).get("device") == "cuda":
        return "cuda"
    session = getattr(predictor, "session", None)  # an ONNX Runtime session
    if session is not None and hasattr(session, "get_providers"):
        return "cuda" if session.get_providers()[0] in ("CUDAExecutionProvider", "TensorrtExecutionProvider") else "cpu"
    module = getattr(predictor, "module", None)
    if isinstance(module, torch.nn.Module):
        for tensor in [*module.parameters(), *module.buffers()]:
            return "cuda" if tensor.device.type == "cuda" else "cpu"
    return "cpu"


def _bundle_variant(loaded) -> Variant:
    manifest = loaded.manifest
    predictor = loaded._predictor  # the backend's callable (``Bundle.predict`` wraps it)
    device = _predictor_device(predictor, manifest)
    module = getattr(predictor, "module", None)
    batch = loaded.batch
    return Variant(
        f"{manifest['backend']}-{manifest['precision']}",
        f"the bundle's artifact ({manifest['artifacts']['model']}, {manifest['backend']}, {manifest['precision']}, target {manifest['target']})",
        device,
        loaded.predict,
        module if device == "cuda" and callable(module) else None,
        (batch.min, batch.max),
    )


class _GraphRunner:
    """Replays a CUDA graph of ``module`` captured per batch size (static input and output buffers)."""

    def __init__(self, module, shape: tuple[int, ...]) -> None:
        self.module = module
        self.shape = shape
        self.graphs: dict[int, tuple] = {}

    def _capture(self, size: int):
        static_in = torch.zeros((size, *self.shape), device="cuda")
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream), torch.inference_mode():
            for _ in range(3):
                self.module(static_in)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph), torch.inference_mode():
            static_out = self.module(static_in)
        return graph, static_in, static_out

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        size = batch.shape[0]
        if size not in self.graphs:
            self.graphs[size] = self._capture(size)
        graph, static_in, static_out = self.graphs[size]
        static_in.copy_(batch)
        graph.replay()
        return static_out.float().cpu()


def _graph_variant(variant: Variant, shape: tuple[int, ...]) -> Variant:
    return Variant(f"{variant.name}-cudagraphs", f"{variant.description}, replayed as a CUDA graph", variant.device,
                   _GraphRunner(variant.module, shape), None, variant.batch_range)


# ------------------------------------------------------------------------------------------ timing


def _split(total: int, parts: int) -> list[int]:
    parts = max(1, min(parts, total))
    return [total // parts + (1 if index < total % parts else 0) for index in range(parts)]


def _time(variant: Variant, batch: torch.Tensor, iters: int, cuda: bool) -> tuple[list[float], list[float]]:
    wall, device_ms = [], []
    for _ in range(iters):
        if cuda:
            torch.cuda.synchronize()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
        began = time.perf_counter()
        variant.run(batch)
        if cuda:
            end.record()
            torch.cuda.synchronize()
        wall.append((time.perf_counter() - began) * 1e3)
        if cuda:
            device_ms.append(start.elapsed_time(end))
    return wall, device_ms


def _stats(values: list[float]) -> dict:
    array = np.asarray(values, dtype=np.float64)
    p50, p90, p99 = np.percentile(array, [50, 90, 99])
    return {"p50": float(p50), "p90": float(p90), "p99": float(p99), "mean": float(array.mean()), "min": float(array.min())}


def _example(size: int, shape: tuple[int, ...]) -> torch.Tensor:
    generator = torch.Generator().manual_seed(size)
    return torch.randn((size, *shape), generator=generator)


# -------------------------------------------------------------------------------------------- main


def run_bench(options: BenchOptions, log: Callable[[str], None] | None = None) -> BenchResult:
    """Measure every variant at every batch size, write the report and plot, return the report."""
    _check_options(options)
    threads = torch.get_num_threads()
    if options.threads is not None:
        torch.set_num_threads(options.threads)  # before loading: ONNX Runtime sessions take this count
    try:
        return _run(options, log or (lambda text: print(text, file=sys.stderr)))
    finally:
        torch.set_num_threads(threads)


def _run(options: BenchOptions, say: Callable[[str], None]) -> BenchResult:
    from . import bundle as bundle_io
    from .core import hostinfo

    started = time.time()
    manifest = bundle_io.read_manifest(options.bundle)
    cuda = options.device != "cpu" and torch.cuda.is_available() and (
        options.device == "cuda" or manifest.get("target") != "cpu" or (manifest.get("requires") or {}).get("device") == "cuda"
    )
    baseline_device = torch.device("cuda" if cuda else "cpu")
    load_device = "cpu" if options.device == "cpu" else ("cuda" if options.device == "cuda" else "auto")
    shape = tuple(manifest["input"]["shape"][1:])
    memory = HostMemory()

    def make_bundle() -> Variant:
        return _bundle_variant(bundle_io.load(options.bundle, device=load_device))

    makers: list[Callable[[], Variant]] = []
    if options.baseline:
        makers.append(lambda: _eager_variant(manifest, baseline_device))
    makers.append(make_bundle)

    # Phase 1: memory, one variant loaded at a time.
    mem: dict[tuple[str, int], dict] = {}
    if options.memory:
        for make in makers:
            gc.collect()
            before = memory.current()
            device_before = _device_used_mb() if cuda else 0.0
            variant = make()
            loaded_rss = memory.current()
            device_loaded = _device_used_mb() if cuda else 0.0
            for size in options.batch_sizes:
                batch = _example(size, shape)
                if cuda:
                    torch.cuda.synchronize()
                    torch.cuda.reset_peak_memory_stats()
                    allocated = torch.cuda.memory_allocated()
                memory.reset()
                for _ in range(MEMORY_ITERS):
                    variant.run(batch)
                host_peak = max(0.0, max(memory.peak(), loaded_rss) - before)  # 0 if the allocator returned memory meanwhile
                entry = {"host_mb": round(host_peak, 1), "load_host_mb": round(max(0.0, loaded_rss - before), 1)}
                if cuda:
                    torch.cuda.synchronize()
                    run_peak = (torch.cuda.max_memory_allocated() - allocated) / 2**20
                    entry["device_mb"] = round(max(0.0, device_loaded - device_before) + max(0.0, run_peak), 1)
                mem[(variant.name, size)] = entry
            del variant
            gc.collect()
            if cuda:
                torch.cuda.empty_cache()

    # Phase 2: timing, every variant loaded, rounds alternating between them.
    variants = [make() for make in makers]
    if options.cuda_graphs:
        if not cuda:
            say("note: --cuda-graphs needs a CUDA GPU; measuring without")
        else:
            variants += [_graph_variant(v, shape) for v in list(variants) if v.module is not None]
    say(f"benchmarking {', '.join(v.name for v in variants)} at batch sizes {', '.join(map(str, options.batch_sizes))} "
        f"({options.warmup} warm-up, {options.iters} timed iterations each, {torch.get_num_threads()} thread(s))")
    results = []
    failed: dict[str, str] = {}
    for size in options.batch_sizes:
        batch = _example(size, shape)
        active = []
        for variant in variants:
            if variant.name in failed:
                continue
            try:
                for _ in range(max(options.warmup, 1 if variant.name.endswith("-cudagraphs") else 0)):
                    variant.run(batch)
                active.append(variant)
            except Exception as error:
                reason = f"{type(error).__name__}: {str(error).strip().splitlines()[0][:200] if str(error).strip() else ''}"
                if not variant.name.endswith("-cudagraphs"):  # the bundle or the baseline itself cannot run
                    raise CheckFailed(f"{variant.name} failed to run a batch of {size}: {reason}") from None
                failed[variant.name] = reason  # a CUDA graph that cannot be captured: reported, not fatal
                say(f"warning: {variant.name} failed at batch {size} and is left out: {reason}")
        wall: dict[str, list[float]] = {v.name: [] for v in active}
        gpu: dict[str, list[float]] = {v.name: [] for v in active}
        for index, chunk in enumerate(_split(options.iters, options.rounds)):
            order = active[index % len(active):] + active[: index % len(active)] if active else []
            for variant in order:
                times, device_times = _time(variant, batch, chunk, cuda and variant.device.startswith("cuda"))
                wall[variant.name] += times
                gpu[variant.name] += device_times
        for variant in active:
            stats = _stats(wall[variant.name])
            entry = {
                "variant": variant.name,
                "description": variant.description,
                "device": variant.device,
                "batch": size,
                "iters": len(wall[variant.name]),
                "p50_ms": round(stats["p50"], 4),
                "p90_ms": round(stats["p90"], 4),
                "p99_ms": round(stats["p99"], 4),
                "mean_ms": round(stats["mean"], 4),
                "min_ms": round(stats["min"], 4),
                "throughput": round(size * 1e3 / stats["p50"], 2) if stats["p50"] > 0 else None,
                "gpu_p50_ms": round(_stats(gpu[variant.name])["p50"], 4) if gpu[variant.name] else None,
                "peak_mem_mb": None,
                "load_mem_mb": None,
                "mem_kind": None,
                "artifact_calls": None,
            }
            base_name = variant.name.removesuffix("-cudagraphs")
            if (base_name, size) in mem:
                figures = mem[(base_name, size)]
                entry["peak_mem_mb"] = figures.get("device_mb", figures["host_mb"]) if variant.device.startswith("cuda") else figures["host_mb"]
                entry["host_peak_mem_mb"] = figures["host_mb"]
                entry["load_mem_mb"] = figures["load_host_mb"]
                entry["mem_kind"] = "cuda (device in use at load + allocator peak)" if variant.device.startswith("cuda") else memory.kind
            if variant.batch_range is not None:
                low, high = variant.batch_range
                entry["artifact_calls"] = math.ceil(size / high)
                entry["padded_to"] = low if size < low else None
            results.append(entry)
    _add_ratios(results)
    report = {
        "schema": REPORT_SCHEMA,
        "schema_version": REPORT_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": options.command,
        "bundle": {
            "path": str(Path(options.bundle).expanduser().absolute()),
            "arch": manifest["arch"],
            "precision": manifest["precision"],
            "backend": manifest["backend"],
            "target": manifest["target"],
            "input_shape": list(shape),
            "batch": manifest["input"]["batch"],
            "random_weights": bool(manifest["reference"].get("random_weights")),
        },
        "settings": {
            "batch_sizes": list(options.batch_sizes),
            "warmup": options.warmup,
            "iters": options.iters,
            "rounds": len(_split(options.iters, options.rounds)),
            "threads": torch.get_num_threads(),
            "device": "cuda" if cuda else "cpu",
            "cuda_graphs": bool(options.cuda_graphs and cuda),
            "input": "random normal float32 NCHW batch on the host; timed from host batch to host logits",
            "baseline": BASELINE_VARIANT if options.baseline else None,
        },
        "machine": {
            "cpu": hostinfo.cpu_model(),
            "cpu_count": os.cpu_count(),
            "threads": torch.get_num_threads(),
            "gpu": hostinfo.gpu_info(),
            "jetson": hostinfo.jetson_model(),
            "platform": hostinfo.host_facts()["platform"],
            "description": hostinfo.describe_host(),
        },
        "versions": hostinfo.library_versions(),
        "failed_variants": failed,
        "results": results,
        "seconds": None,
    }
    report["seconds"] = round(time.time() - started, 2)
    written: dict[str, Path] = {}
    if options.report is not None:
        written["report"] = write_json(options.report, report)
    if options.plot is not None:
        written["plot"] = write_atomic(options.plot, render_plot(report, Path(options.plot).suffix.lower().lstrip(".")))
    return BenchResult(report, written)


def _sig(value: float, digits: int = 4) -> float:
    """``value`` to ``digits`` significant figures (ratios span orders of magnitude)."""
    return float(f"{value:.{digits}g}")


def _add_ratios(results: list[dict]) -> None:
    """``speedup`` (baseline p50 / p50) and the ratio of every figure to the baseline's at that batch."""
    baseline = {entry["batch"]: entry for entry in results if entry["variant"] == BASELINE_VARIANT}
    for entry in results:
        base = baseline.get(entry["batch"])
        if base is None:
            entry["speedup"] = None
            entry["ratios"] = None
            continue
        entry["speedup"] = _sig(base["p50_ms"] / entry["p50_ms"]) if entry["p50_ms"] else None
        ratios = {}
        for key in ("p50_ms", "p90_ms", "p99_ms", "throughput", "peak_mem_mb"):
            ours, theirs = entry.get(key), base.get(key)
            ratios[key.removesuffix("_ms").removesuffix("_mb")] = _sig(ours / theirs) if ours is not None and theirs else None
        entry["ratios"] = ratios


# ----------------------------------------------------------------------------------- table and plot


def format_table(report: dict) -> str:
    """The results as a human-readable table (what the CLI prints)."""
    bundle, settings = report["bundle"], report["settings"]
    lines = [
        f"bench {bundle['path']}",
        f"  {bundle['arch']} {bundle['precision']} {bundle['backend']} (target {bundle['target']}), input {'x'.join(map(str, bundle['input_shape']))}; "
        f"{report['machine']['description']}, {settings['threads']} thread(s)",
        f"  {settings['iters']} timed iterations per point ({settings['warmup']} warm-up), host batch to host logits",
        "",
        f"  {'variant':<28}{'batch':>6}{'p50 ms':>10}{'p90 ms':>10}{'p99 ms':>10}{'img/s':>10}{'peak MB':>9}{'speedup':>9}",
    ]
    for entry in sorted(report["results"], key=lambda e: (e["batch"], e["variant"] != BASELINE_VARIANT, e["variant"])):
        speedup = "n/a" if entry["speedup"] is None else f"{entry['speedup']:.2f}x"
        memory = "n/a" if entry["peak_mem_mb"] is None else f"{entry['peak_mem_mb']:.0f}"
        throughput = "n/a" if entry["throughput"] is None else f"{entry['throughput']:.1f}"
        lines.append(
            f"  {entry['variant']:<28}{entry['batch']:>6}{entry['p50_ms']:>10.3f}{entry['p90_ms']:>10.3f}{entry['p99_ms']:>10.3f}"
            f"{throughput:>10}{memory:>9}{speedup:>9}"
        )
    for name, reason in report.get("failed_variants", {}).items():
        lines.append(f"  {name}: not measured ({reason})")
    if bundle.get("random_weights"):
        lines.append("  (random-weights bundle: speed only)")
    return "\n".join(lines)


def render_plot(report: dict, fmt: str = "png") -> bytes:
    """Latency (p50, with the p90-p99 band) and throughput against batch size, one line per variant."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 4.2), layout="constrained")
    latency_ax, throughput_ax = figure.subplots(1, 2)
    variants = list(dict.fromkeys(entry["variant"] for entry in report["results"]))
    for name in variants:
        entries = sorted((e for e in report["results"] if e["variant"] == name), key=lambda e: e["batch"])
        batches = [e["batch"] for e in entries]
        style = "--" if name == BASELINE_VARIANT else "-"
        (line,) = latency_ax.plot(batches, [e["p50_ms"] for e in entries], style, marker="o", label=name)
        latency_ax.fill_between(batches, [e["p90_ms"] for e in entries], [e["p99_ms"] for e in entries], color=line.get_color(), alpha=0.15)
        throughput_ax.plot(batches, [e["throughput"] or 0 for e in entries], style, marker="o", color=line.get_color(), label=name)
    for ax, label in ((latency_ax, "latency p50 per batch (ms); band: p90-p99"), (throughput_ax, "throughput (images/s)")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("batch size")
        ax.set_ylabel(label)
        ax.set_xticks(report["settings"]["batch_sizes"], [str(b) for b in report["settings"]["batch_sizes"]])
        ax.grid(True, alpha=0.3)
        ax.legend()
    bundle = report["bundle"]
    figure.suptitle(
        f"{bundle['arch']} {bundle['precision']} {bundle['backend']} vs eager FP32 - {report['machine']['description']}, "
        f"{report['settings']['threads']} thread(s)",
        fontsize=9,
    )
    buffer = BytesIO()
    figure.savefig(buffer, format=fmt, dpi=120)
    return buffer.getvalue()
