"""AOTInductor packages against TorchScript, ONNX Runtime and OpenVINO on the CPU (issue 23 item 6).

    .venv/bin/python benchmarks/aoti_vs_torchscript.py                                   # resnet18 and resnet50
    .venv/bin/python benchmarks/aoti_vs_torchscript.py --arch resnet20 --iters 2 --rounds 1 --frames 2   # smoke

For each arch, FP32 bundles of the same random weights (speed does not depend on them), each compiled
with ``resnet-edge compile`` in its own process and timed there (wall seconds, the manifest's build
seconds and, for ``aoti``, its phases): ``aoti`` fused and unfused, ``torchscript`` fused and unfused,
``onnxruntime``, ``openvino``. The package cache is off for these compiles (``RESNET_EDGE_AOTI_CACHE=0``),
so the compile time is a real compile; Inductor's own cache (precompiled headers, in
``TORCHINDUCTOR_CACHE_DIR``) stays as the machine has it, and the first compile on a machine pays for it.

Latency: each bundle is loaded in its own process (``timing.ProcessRunners``: only one runs at a time,
rounds alternate them) and called as an application does (``bundle.predict``: host batch in, host logits
out) at batch 1 and ``--throughput-batch`` (8); p50 per runner, and ``aoti --fused`` over
``torchscript --fused`` (target <= 1.05). With ``--binary`` (``make cpp``), the C++ app's inference
latency on 320x240 frames for the fused ``aoti`` and ``torchscript`` bundles (``cpp_vs_python``'s
measurement) against Python's (target: ``aoti`` C++ within 5 % of Python). Writes JSON with ``--json``.
Take figures on a quiet machine only.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO / "tests"))

import torch  # noqa: E402
from cpp_vs_python import cpp_latency, python_latency  # noqa: E402
from helpers.golden import make_frames  # noqa: E402
from timing import ProcessRunners  # noqa: E402

from resnet_edge import bundle  # noqa: E402
from resnet_edge.core.hostinfo import host_facts  # noqa: E402

VARIANTS = {
    "aoti-fused": ("--backend", "aoti", "--fused"),
    "aoti-unfused": ("--backend", "aoti", "--no-fused"),
    "torchscript-fused": ("--backend", "torchscript", "--fused"),
    "torchscript-unfused": ("--backend", "torchscript", "--no-fused"),
    "onnxruntime": ("--backend", "onnxruntime",),
    "openvino": ("--backend", "openvino",),
}
TARGET_RATIO = 1.05


def make_runner(recipe: dict):
    """batch -> logits for a worker process (module level: spawned processes import it)."""
    return bundle.load(Path(recipe["path"]), device="cpu").predict


def compile_variant(arch: str, name: str, out: Path, max_batch: int) -> dict:
    """Compile one variant in its own process; its compile figures."""
    command = [sys.executable, "-m", "resnet_edge", "compile", "--arch", arch, "--random-weights", "--fp32",
               "--dynamic-batch", f"1:1:{max_batch}", "--out", str(out), *VARIANTS[name]]
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env={**os.environ, "RESNET_EDGE_AOTI_CACHE": "0"})
    wall = round(time.monotonic() - started, 1)
    if result.returncode != 0:
        return {"error": (result.stderr.strip().splitlines() or ["?"])[-1]}
    manifest = bundle.read_manifest(out)
    figures = {"wall_s": wall, "build_s": manifest.get("build", {}).get("backend_seconds")}
    if "aoti" in manifest:
        figures["phases_s"] = manifest["aoti"].get("seconds")
    return figures


def latency(plan: dict[str, dict], shape: tuple[int, ...], args) -> dict:
    """p50 ms per runner at batch 1 and the throughput batch, each runner in its own process."""
    rows: dict[int, dict[str, float]] = {}
    with ProcessRunners(plan, make_runner, args.threads) as runners:
        for size in (1, args.throughput_batch):
            batch = torch.randn((size, *shape), generator=torch.Generator().manual_seed(size))
            samples = runners.time(batch, args.rounds, args.iters, args.warmup)
            rows[size] = {name: round(statistics.median(values), 3) for name, values in samples.items()}
    return rows


def cpp_rows(plan: dict[str, dict], args, work: Path) -> dict:
    """C++ app vs Python inference ms (batch 1, 320x240 frames) for the fused aoti and torchscript bundles."""
    frames = make_frames(work / "frames", count=args.frames)
    rows = {}
    for name in ("aoti-fused", "torchscript-fused"):
        if name in plan:
            path = Path(plan[name]["path"])
            cpp = cpp_latency(args.binary, path, frames[0].parent, args.threads, args.repeat, args.warmup)
            torch.set_num_threads(args.threads)
            python = python_latency(path, frames, args.repeat, args.warmup)
            rows[name] = {"cpp_ms": round(cpp["inference"], 3), "python_ms": round(python["inference"], 3),
                          "cpp_over_python": round(cpp["inference"] / python["inference"], 3)}
    return rows


def measure(arch: str, args, work: Path) -> dict:
    compiles, plan = {}, {}
    for name in args.variants:
        out = work / name
        compiles[name] = compile_variant(arch, name, out, args.throughput_batch)
        print(f"{arch} {name}: compile {compiles[name]}", flush=True)
        if "error" not in compiles[name]:
            plan[name] = {"path": str(out)}
    shape = tuple(bundle.read_manifest(Path(next(iter(plan.values()))["path"]))["input"]["shape"][1:])
    figures = {"arch": arch, "threads": args.threads, "load_average_before": round(os.getloadavg()[0], 2),
               "compile": compiles, "p50_ms": latency(plan, shape, args)}
    if args.binary and args.binary.is_file():
        figures["cpp"] = cpp_rows(plan, args, work)
    figures["load_average_after"] = round(os.getloadavg()[0], 2)
    return figures


def print_table(figures: dict) -> None:
    print(f"\n{figures['arch']} FP32 ({figures['threads']} threads; load average {figures['load_average_before']} "
          f"before, {figures['load_average_after']} after; each runner in its own process)")
    sizes = list(figures["p50_ms"])
    print(f"  {'variant':22} {'compile s':>10} " + " ".join(f"{'p50 ms b' + str(s):>12}" for s in sizes))
    for name, compiled in figures["compile"].items():
        times = " ".join(f"{figures['p50_ms'][s].get(name, float('nan')):12.3f}" for s in sizes)
        print(f"  {name:22} {compiled.get('wall_s', float('nan')):10.1f} {times}")
    for size in sizes:
        row = figures["p50_ms"][size]
        if "aoti-fused" in row and "torchscript-fused" in row:
            ratio = row["aoti-fused"] / row["torchscript-fused"]
            verdict = "within" if ratio <= TARGET_RATIO else "outside"
            print(f"  batch {size}: aoti-fused / torchscript-fused = {ratio:.3f} ({verdict} the {TARGET_RATIO} target)")
    for name, row in figures.get("cpp", {}).items():
        print(f"  C++ app {name}: {row['cpp_ms']:.3f} ms vs Python {row['python_ms']:.3f} ms ({row['cpp_over_python']:.3f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", action="append", help="repeatable; default resnet18 and resnet50")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--throughput-batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--iters", type=int, default=20, help="timed calls per round and batch size")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--binary", type=Path, default=REPO / "build" / "cpp" / "resnet-edge-infer")
    parser.add_argument("--frames", type=int, default=10, help="320x240 frames for the C++ comparison")
    parser.add_argument("--repeat", type=int, default=3, help="passes over the frames (C++ comparison)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="aoti-vs-torchscript-") as work:
        for arch in args.arch or ["resnet18", "resnet50"]:
            (Path(work) / arch).mkdir()
            results.append(measure(arch, args, Path(work) / arch))
            print_table(results[-1])
    if args.json:
        payload = {"results": results, "host": host_facts(), "settings": {k: str(v) for k, v in vars(args).items()}}
        args.json.write_text(json.dumps(payload, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
