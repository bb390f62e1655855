"""CPU latency of the fused-ops model against PyTorch eager FP32 and TorchScript frozen.

    .venv/bin/python benchmarks/fused_ops.py                            # resnet18 + resnet50, batch 1 and 8, 2 threads
    .venv/bin/python benchmarks/fused_ops.py --arch resnet50 --batch 1 --threads 2 --json fused.json

For each (arch, batch) one random-weight model (latency does not depend on the weight values) is
run three ways: eager FP32; TorchScript frozen (``torch.jit.freeze`` + ``optimize_for_inference``,
which folds BN and converts to oneDNN layouts with prepacked weights); and ``fuse_model`` (one
``resnet_edge::`` op per block). All three run under ``torch.inference_mode`` on one fixed batch, are
checked against eager before timing, and are timed round-robin (one slice of iterations each per
round) so load from other processes on a shared machine hits all of them alike. The table gives
median latency and the fused model's speed-up over the other two (a ratio > 1 means fused is faster).
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from resnet_edge.fuse import fuse_model  # noqa: E402
from resnet_edge.models import create_model, get_spec  # noqa: E402
from timing import time_interleaved  # noqa: E402  (benchmarks/, this script's own directory)

VARIANTS = ("eager fp32", "torchscript frozen", "fused ops")


def torchscript_frozen(model: torch.nn.Module) -> torch.jit.ScriptModule:
    """The TorchScript baseline: scripted, frozen and optimized for inference (a copy of ``model``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch 2.14 deprecates TorchScript
        return torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.script(copy.deepcopy(model))))


def measure(arch: str, batch_size: int, args: argparse.Namespace) -> dict:
    """One table row: median latency of each variant for ``arch`` at ``batch_size``."""
    torch.manual_seed(0)
    model = create_model(arch).eval()
    size = get_spec(arch).input_size
    batch = torch.randn(batch_size, 3, size, size, generator=torch.Generator().manual_seed(0))
    runners = dict(zip(VARIANTS, (model, torchscript_frozen(model), fuse_model(model))))
    with torch.inference_mode():
        reference = model(batch)
        max_diff = {name: (run(batch) - reference).abs().max().item() for name, run in runners.items()}
    with torch.inference_mode():
        samples = time_interleaved(runners, batch, args.rounds, args.iters, args.warmup)
    median = {name: statistics.median(values) for name, values in samples.items()}
    return {
        "arch": arch,
        "batch": batch_size,
        "median_ms": {name: round(value, 2) for name, value in median.items()},
        "fused_vs_eager": round(median["eager fp32"] / median["fused ops"], 2),
        "fused_vs_frozen": round(median["torchscript frozen"] / median["fused ops"], 2),
        "max_abs_logit_diff_vs_eager": max_diff,
        "samples": len(samples["fused ops"]),
    }


def cpu_name() -> str:
    """The CPU model, for the table's caption."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", nargs="+", default=["resnet18", "resnet50"])
    parser.add_argument("--batch", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--json", type=Path, help="Also write the results as JSON.")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    rows = []
    for arch in args.arch:
        for batch_size in args.batch:
            started = time.time()
            rows.append(measure(arch, batch_size, args))
            print(f"measured {arch} batch {batch_size} in {time.time() - started:.0f}s", file=sys.stderr)

    host = f"{cpu_name()}, {args.threads} threads, torch {torch.__version__}, oneDNN {torch.backends.mkldnn.is_available()}"
    print(f"\nmedian latency, {args.rounds} interleaved rounds x {args.iters} runs per variant; {host}\n")
    print("| arch | batch | eager FP32 ms | TorchScript frozen ms | fused ms | fused vs eager | fused vs frozen |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        ms = row["median_ms"]
        print(
            f"| {row['arch']} | {row['batch']} | {ms['eager fp32']:.1f} | {ms['torchscript frozen']:.1f} | "
            f"{ms['fused ops']:.1f} | {row['fused_vs_eager']:.2f}x | {row['fused_vs_frozen']:.2f}x |"
        )
    worst = max(diff for row in rows for diff in row["max_abs_logit_diff_vs_eager"].values())
    print(f"\nlargest |logit - eager logit| of any variant: {worst:.2e}")
    if args.json:
        args.json.write_text(json.dumps({"host": host, "threads": args.threads, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
