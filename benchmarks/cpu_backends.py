"""CPU latency of every backend/precision that runs on a CPU, side by side with PyTorch eager FP32.

    .venv/bin/python benchmarks/cpu_backends.py                 # resnet50, batch 1, 2 threads
    .venv/bin/python benchmarks/cpu_backends.py --arch resnet18 --threads 4 --json results.json

Builds each bundle with `resnet_edge.compile` (random weights: latency does not depend on the weight
values; INT8 is calibrated on 32 real images of the built-in shapes set, since compile refuses random
calibration), loads it with `bundle.load` as every consumer does, and times `predict` on one fixed
batch. Runners are timed round-robin (one slice of iterations each per round), so load from other
processes on a shared machine hits all of them alike. torch and ONNX Runtime both use --threads
intra-op threads (`torch.set_num_threads`; the ONNX Runtime backend follows `torch.get_num_threads()`);
one extra row runs eager FP32 on 1 thread, which shows how much of the eager time is OpenMP contention
when the machine is shared (see the load average printed with the table).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from resnet_edge import bundle
from resnet_edge.core import hostinfo  # noqa: E402
from resnet_edge.backends import backend_availability  # noqa: E402
from resnet_edge.pipelines.compile import CompileOptions, compile_bundle  # noqa: E402
from resnet_edge.models import create_model, get_spec  # noqa: E402
from timing import time_interleaved  # noqa: E402  (benchmarks/, this script's own directory)

# (label, backend, precision, target): every combination that runs on a CPU.
VARIANTS = [
    ("onnxruntime fp32", "onnxruntime", "fp32", "cpu"),
    ("onnxruntime fp16", "onnxruntime", "fp16", "cpu"),
    ("onnxruntime int8 (cpu placement)", "onnxruntime", "int8", "cpu"),
    ("onnxruntime int8 (tensorrt placement)", "onnxruntime", "int8", "datacenter"),
    ("torchscript fp32", "torchscript", "fp32", "cpu"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="resnet50")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--calib-images", type=int, default=32)
    parser.add_argument("--only", nargs="*", help="Labels (substrings) of the variants to run.")
    parser.add_argument("--bundles", type=Path, help="Keep the bundles here (default: a temporary directory).")
    parser.add_argument("--json", type=Path, help="Also write the results as JSON.")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    spec = get_spec(args.arch)
    eager = create_model(args.arch).eval()
    batch = torch.randn(args.batch, 3, spec.input_size, spec.input_size, generator=torch.Generator().manual_seed(0))

    def eager_run(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return eager(x)

    def eager_one_thread(x: torch.Tensor) -> torch.Tensor:
        # A reference that OpenMP cannot oversubscribe: on a loaded machine a 2-thread OpenMP team
        # waits at every barrier for a thread the OS has descheduled, and eager 2-thread times balloon.
        torch.set_num_threads(1)
        try:
            return eager_run(x)
        finally:
            torch.set_num_threads(args.threads)

    runners = {"pytorch eager fp32": eager_run, "pytorch eager fp32, 1 thread": eager_one_thread}
    skipped = {}
    with tempfile.TemporaryDirectory(prefix="resnet-edge-bench-") as scratch:
        root = args.bundles or Path(scratch)
        for label, backend, precision, target in VARIANTS:
            if args.only and not any(part in label for part in args.only):
                continue
            ok, reason = backend_availability(backend)
            if not ok:
                skipped[label] = reason
                continue
            out = root / label.replace(" ", "-").replace("(", "").replace(")", "")
            options = CompileOptions(
                arch=args.arch, out=out, precision=precision, random_weights=True, backend=backend, target=target,
                batch=args.batch, force=True,
                calib_data="shapes:600" if precision == "int8" else None, calib_images=args.calib_images,
            )
            try:
                started = time.time()
                compile_bundle(options)  # the library logs: no handler here, so only its warnings reach stderr
                print(f"built {label} in {time.time() - started:.0f}s", file=sys.stderr)
            except Exception as error:  # e.g. FP16 TorchScript without a GPU
                skipped[label] = f"{type(error).__name__}: {error}"
                continue
            loaded = bundle.load(out, device="cpu")
            if loaded.manifest.get("fused"):
                label += " (fused ops)"
            runners[label] = loaded.predict
        load_before = os.getloadavg()[0]
        samples = time_interleaved(runners, batch, args.rounds, args.iters, args.warmup)
        load_after = os.getloadavg()[0]

    eager_ms = statistics.median(samples["pytorch eager fp32"])
    rows = []
    for name, values in samples.items():
        values = sorted(values)
        median = statistics.median(values)
        rows.append({
            "variant": name,
            "median_ms": round(median, 2),
            "p90_ms": round(values[int(0.9 * (len(values) - 1))], 2),
            "speedup_vs_eager": round(eager_ms / median, 2),
        })
    host = hostinfo.describe_host()
    print(f"\n{args.arch}, batch {args.batch}, {args.threads} threads, {len(samples['pytorch eager fp32'])} timed runs each "
          f"({args.rounds} interleaved rounds x {args.iters}); host: {host}; torch {torch.__version__}, "
          f"onnxruntime {hostinfo.package_version('onnxruntime')}; 1-min load average {load_before:.1f} before, {load_after:.1f} after "
          f"(a load above {os.cpu_count()} means other processes competed for the cores)\n")
    print("| variant | median ms | p90 ms | speed-up vs eager FP32 |")
    print("|---|---:|---:|---:|")
    for row in rows:
        print(f"| {row['variant']} | {row['median_ms']:.1f} | {row['p90_ms']:.1f} | {row['speedup_vs_eager']:.2f}x |")
    for label, reason in skipped.items():
        print(f"| {label} | skipped: {reason} | | |")
    if args.json:
        args.json.write_text(json.dumps({"arch": args.arch, "batch": args.batch, "threads": args.threads, "host": host,
                                         "load_average": [load_before, load_after], "rows": rows, "skipped": skipped}, indent=2) + "\n")


if __name__ == "__main__":
    main()
