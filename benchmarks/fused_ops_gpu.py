"""GPU latency of the fused-ops ResNet against eager PyTorch and ``torch.compile``, with and without CUDA graphs.

    python benchmarks/fused_ops_gpu.py --json fused_gpu.json          # ResNet-50, batch 1 and 32, FP32 (TF32 off) and FP16
    python benchmarks/fused_ops_gpu.py --arch resnet50 resnet20 --cases fp16:1 fp16:32 fp32:32 --routes aten_fused epilogue
                                                                      # the GPU suite's rows: also the other CUDA routes
    python benchmarks/fused_ops_gpu.py --memcheck                     # small correctness cases, for compute-sanitizer
    python benchmarks/fused_ops_gpu.py --device cpu --arch resnet20 --size 32 --batch 2 --dtype fp32 --no-compile
                                                                      # the CPU dry run of the same code path

For each (dtype, batch) one random-weight model, with BatchNorm statistics drawn so folding matters
(the same recipe as tests/fuse/test_fuse.py), is run three ways, all channels_last and under
``torch.inference_mode``: eager PyTorch; ``fuse_model`` (one ``resnet_edge::`` op per block); and
``torch.compile`` of the eager model (inductor, default mode, static shapes). On CUDA each is also
captured once into a ``torch.cuda.CUDAGraph`` and replayed ("+graph"), so launch overhead drops out
for all three alike. ``--routes`` adds the fused model once more per named CUDA convolution route
("fused:epilogue", "fused:aten_fused", "fused:cudnn_graph"; RESNET_EDGE_CONV_ROUTE, csrc/ops/conv_route.h),
so the route "fused" takes by default (recorded as ``default_route``) is compared with the others in one
process. FP32 runs with TF32 off (cuDNN and matmul); cuDNN autotuning is on for every
variant (the fused op honours ``torch.backends.cudnn.benchmark`` too).

Timing: CUDA events around ``--iters`` back-to-back calls, ``--rounds`` rounds with the variants taking
turns, median of the per-round means (CPU: ``timing.time_interleaved``). Accuracy: every variant's
logits against eager of the same dtype and against eager FP32, as max |diff| and relative to the
largest |logit|; a graph replay is also compared with its own un-captured call.

``--budget-s`` bounds the run: a torch.compile variant that would start after that many seconds is
skipped, with the reason in the JSON, so a slow compile cannot eat a whole GPU lease.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # helpers.models: the fusion tests' model recipe

import torch  # noqa: E402
from torch import nn  # noqa: E402

from resnet_edge.fuse import fuse_model  # noqa: E402
from resnet_edge.models import get_spec  # noqa: E402
from helpers.models import trained_like as realistic_model  # noqa: E402
from fused_ops_common import DTYPES, diff_stats, on_route, precision_flags  # noqa: E402  (benchmarks/, beside this script)
from timing import time_interleaved  # noqa: E402

BASE_VARIANTS = ("eager", "fused", "compile")
ROUTES = ("cudnn_graph", "aten_fused", "epilogue")


def default_route() -> str | None:
    """The CUDA route "fused" takes here (None when the extension lacks the introspection op)."""
    op = getattr(torch.ops.resnet_edge, "_conv_route", None)
    return op() if op is not None else None


def capture_graph(run: Callable[[], torch.Tensor], device: torch.device) -> tuple[Callable[[], torch.Tensor], torch.Tensor]:
    """``run`` captured into a CUDA graph: (replay, the graph's static output).

    Warm-up calls on a side stream first, as torch.cuda.graph's documentation asks, so cuDNN's
    autotuning and lazy initialisation happen outside the capture.
    """
    stream = torch.cuda.Stream(device)
    stream.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(stream):
        for _ in range(3):
            run()
    torch.cuda.current_stream(device).wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_out = run()
    graph.replay()
    torch.cuda.synchronize(device)

    def replay() -> torch.Tensor:
        graph.replay()
        return static_out

    replay.graph = graph  # keep the graph alive with the runner
    return replay, static_out


def time_cuda(runners: dict[str, Callable[[], torch.Tensor]], rounds: int, iters: int, warmup: int) -> dict[str, list[float]]:
    """Milliseconds per call of each runner: one CUDA-event-timed mean of ``iters`` calls per round."""
    for run in runners.values():
        for _ in range(warmup):
            run()
    torch.cuda.synchronize()
    samples: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(iters):
                run()
            end.record()
            end.synchronize()
            samples[name].append(start.elapsed_time(end) / iters)
    return samples


class Deadline:
    """Seconds left of ``--budget-s``; None means no bound."""

    def __init__(self, budget_s: float | None):
        self.end = None if budget_s is None else time.monotonic() + budget_s

    def expired(self) -> bool:
        return self.end is not None and time.monotonic() > self.end


def build_variants(
    arch: str, dtype: torch.dtype, device: torch.device, args: argparse.Namespace, deadline: Deadline, notes: list[str]
) -> dict[str, nn.Module | Callable]:
    """The models of one row: eager, fused and (when asked and time allows) torch.compile."""
    fp32 = realistic_model(arch)
    fused = fuse_model(fp32)  # folds BN in float64 on the CPU, before any cast to FP16
    layout = {"device": device, "dtype": dtype, "memory_format": torch.channels_last}
    variants: dict[str, nn.Module | Callable] = {"eager": fp32.to(**layout), "fused": fused.to(**layout)}
    if args.compile and not deadline.expired():
        import torch._dynamo as dynamo  # binds `dynamo` only: a plain `import torch._dynamo` would make `torch` local

        dynamo.reset()  # one fresh, static-shape compile per row; no recompile limit is reached
        options = {"freezing": True} if args.freezing else None
        variants["compile"] = torch.compile(variants["eager"], backend=args.compile_backend, dynamic=False, options=options)
    elif args.compile:
        notes.append(f"compile skipped for {dtype} batch rows after the {args.budget_s:.0f} s budget ran out")
    return variants


def measure(arch: str, dtype_name: str, batch_size: int, device: torch.device, args: argparse.Namespace, deadline: Deadline) -> dict:
    """One row: latency of every variant (and its CUDA-graph replay) plus its logit error."""
    dtype = DTYPES[dtype_name]
    size = args.size or get_spec(arch).input_size
    notes: list[str] = []
    started = time.monotonic()
    x_cpu = torch.randn(batch_size, 3, size, size, generator=torch.Generator().manual_seed(1))
    x = x_cpu.to(device=device, dtype=dtype).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), precision_flags(device):
        reference_fp32 = realistic_model(arch).to(device).eval()(x_cpu.to(device)).float()
        models = build_variants(arch, dtype, device, args, deadline, notes)
        runners: dict[str, Callable[[], torch.Tensor]] = {name: (lambda m=model: m(x)) for name, model in models.items()}
        for route in args.routes if device.type == "cuda" else ():
            runners[f"fused:{route}"] = on_route(route, runners["fused"])
        compile_started = time.monotonic()
        outputs = {name: run().float() for name, run in runners.items()}  # the first compile call compiles
        compile_s = round(time.monotonic() - compile_started, 1) if "compile" in models else None
        if args.graphs and device.type == "cuda":
            for name in list(runners):
                try:
                    replay, static_out = capture_graph(runners[name], device)
                except Exception as error:  # one variant that will not capture must not cost the others' figures
                    notes.append(f"{name}+graph not measured: capture failed ({type(error).__name__}: {str(error)[:200]})")
                    torch.cuda.synchronize(device)
                    continue
                graph_diff = diff_stats(static_out.float(), outputs[name])
                if graph_diff["max_abs"] != 0.0:
                    notes.append(f"{name}+graph differs from {name} by {graph_diff['max_abs']:.3g}")
                runners[f"{name}+graph"] = replay
                outputs[f"{name}+graph"] = static_out.float()
        elif args.graphs:
            notes.append("CUDA graphs skipped: not a CUDA device")
        if device.type == "cuda":
            samples = time_cuda(runners, args.rounds, args.iters, args.warmup)
        else:
            samples = time_interleaved({n: (lambda _b, r=r: r()) for n, r in runners.items()}, x, args.rounds, args.iters, args.warmup)
    median = {name: statistics.median(values) for name, values in samples.items()}
    row = {
        "arch": arch,
        "dtype": dtype_name,
        "batch": batch_size,
        "input_size": size,
        "median_ms": {name: round(value, 4) for name, value in median.items()},
        "images_per_s": {name: round(batch_size * 1000.0 / value, 1) for name, value in median.items()},
        "vs_eager_same_dtype": {name: diff_stats(out, outputs["eager"]) for name, out in outputs.items()},
        "vs_eager_fp32": {name: diff_stats(out, reference_fp32) for name, out in outputs.items()},
        "compile_s": compile_s,
        "seconds": round(time.monotonic() - started, 1),
        "notes": notes,
    }
    row["fused_vs_eager"] = round(median["eager"] / median["fused"], 3)
    if "eager+graph" in median:
        row["fused_graph_vs_eager_graph"] = round(median["eager+graph"] / median["fused+graph"], 3)
    if "compile" in median:
        row["fused_vs_compile"] = round(median["compile"] / median["fused"], 3)
    if "compile+graph" in median:
        row["fused_graph_vs_compile_graph"] = round(median["compile+graph"] / median["fused+graph"], 3)
        row["routes_graph_vs_compile_graph"] = {
            name[len("fused:"):-len("+graph")]: round(median["compile+graph"] / value, 3)
            for name, value in median.items() if name.startswith("fused:") and name.endswith("+graph")
        }
    return row


def host_line(device: torch.device) -> str:
    """What ran: GPU (or CPU) name, torch, CUDA and cuDNN versions."""
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        what = f"{props.name} (sm_{props.major}{props.minor}, {props.multi_processor_count} SMs)"
    else:
        what = platform.processor() or platform.machine()
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return f"{what}, torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {cudnn}"


def print_table(rows: list[dict]) -> None:
    """The Markdown table of median latencies and the fused op's ratios (ratio > 1: fused is faster)."""
    names = [name for name in ("eager", "fused", "compile", "eager+graph", "fused+graph", "compile+graph") if any(name in r["median_ms"] for r in rows)]
    print("| arch | dtype | batch | " + " | ".join(f"{n} ms" for n in names) + " | fused vs eager | fused vs eager (graphs) | fused max abs diff vs eager (same dtype) |")
    print("|---|---|---:|" + "---:|" * len(names) + "---:|---:|---:|")
    for row in rows:
        ms = row["median_ms"]
        cells = " | ".join(f"{ms[n]:.3f}" if n in ms else "-" for n in names)
        graph_ratio = row.get("fused_graph_vs_eager_graph")
        diff = row["vs_eager_same_dtype"]["fused"]["max_abs"]
        print(
            f"| {row['arch']} | {row['dtype']} | {row['batch']} | {cells} | {row['fused_vs_eager']:.2f}x | "
            f"{f'{graph_ratio:.2f}x' if graph_ratio else '-'} | {diff:.2e} |"
        )


def parse_case(text: str) -> tuple[str, int]:
    """"fp16:32" -> ("fp16", 32), for --cases."""
    dtype_name, _, batch = text.partition(":")
    if dtype_name not in DTYPES or not batch.isdigit() or int(batch) < 1:
        raise argparse.ArgumentTypeError(f"a case is DTYPE:BATCH with DTYPE one of {sorted(DTYPES)}, not {text!r}")
    return dtype_name, int(batch)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", nargs="+", default=["resnet50"])
    parser.add_argument("--batch", nargs="+", type=int, default=[1, 32])
    parser.add_argument("--dtype", nargs="+", choices=sorted(DTYPES), default=["fp16", "fp32"])
    parser.add_argument("--cases", nargs="+", type=parse_case, help="dtype:batch rows (e.g. fp16:1 fp32:32) instead of every --dtype x --batch.")
    parser.add_argument("--routes", nargs="*", choices=ROUTES, default=[], help="Also time the fused model on these CUDA routes.")
    parser.add_argument("--size", type=int, help="Input height and width (default: the arch's own, 224 for ResNet-50).")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True, help="Also time torch.compile (inductor).")
    parser.add_argument("--compile-backend", default="inductor", help="torch.compile backend (aot_eager: a quick CPU dry run).")
    parser.add_argument("--freezing", action="store_true", help="torch.compile with inductor freezing (BN folded at compile time).")
    parser.add_argument("--graphs", action=argparse.BooleanOptionalAction, default=True, help="Also time CUDA-graph replays.")
    parser.add_argument("--budget-s", type=float, help="Skip torch.compile rows that would start after this many seconds.")
    parser.add_argument("--memcheck", action="store_true", help="Run the small correctness cases only (for compute-sanitizer).")
    parser.add_argument("--json", type=Path, help="Also write the results as JSON.")
    args = parser.parse_args()

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("fused_ops_gpu: --device cuda, but torch sees no CUDA GPU", file=sys.stderr)
        return 2
    if args.memcheck:
        from fused_ops_memcheck import memcheck

        return 1 if memcheck(device) else 0
    cases = args.cases or [(dtype_name, batch_size) for dtype_name in args.dtype for batch_size in args.batch]
    if device.type == "cpu" and any(dtype_name == "fp16" for dtype_name, _ in cases):
        print("fused_ops_gpu: the fused CPU kernel is FP32-only; pass --dtype fp32 with --device cpu", file=sys.stderr)
        return 2

    deadline = Deadline(args.budget_s)
    rows = []
    for arch in args.arch:
        for dtype_name, batch_size in cases:
            row = measure(arch, dtype_name, batch_size, device, args, deadline)
            rows.append(row)
            print(f"measured {arch} {dtype_name} batch {batch_size} in {row['seconds']:.0f}s (compile {row['compile_s']}s)", file=sys.stderr, flush=True)

    host = host_line(device)
    print(f"\nmedian ms per call, {args.rounds} rounds x {args.iters} calls, channels_last; {host}\n")
    print_table(rows)
    for row in rows:
        for note in row["notes"]:
            print(f"note: {row['dtype']} batch {row['batch']}: {note}")
    if args.json:
        meta = {"host": host, "device": str(device), "torch": torch.__version__, "rounds": args.rounds, "iters": args.iters,
                "tf32": False, "cudnn_benchmark": True, "compile": args.compile,
                "compile_backend": args.compile_backend, "freezing": args.freezing,
                "default_route": default_route(), "routes": args.routes if device.type == "cuda" else []}
        args.json.write_text(json.dumps({**meta, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
