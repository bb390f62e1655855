"""C++ (resnet-edge-infer / libresnet_edge) vs Python (bundle.load + transform + predict) latency
of the same FP32 TorchScript bundles on the CPU, one 320x240 camera-sized frame at a time.

    make cpp && .venv/bin/python benchmarks/cpp_vs_python.py [--threads 2] [--frames 20] [--repeat 3]

Builds (into --work, reused when present) a ResNet-20 bundle (the demo model's architecture and
32x32 cifar preprocessing) and a ResNet-50 bundle (ImageNet preprocessing, resize 256 / crop 224),
both with random weights (latency does not depend on the weights) and fused ops when they are
built. Decoding the image file is left out on both sides: "preprocess" is resize + crop +
normalise of the decoded frame, "inference" the model call (batch 1), medians over all frames.
Prints a Markdown table and the machine it ran on.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))  # helpers.golden: the parity test's image generator

from resnet_edge import bundle as bundle_mod  # noqa: E402
from helpers.golden import make_frames  # noqa: E402
from resnet_edge.data.images import load_rgb  # noqa: E402

MODELS = {"resnet20": "demo model (32x32, cifar preset)", "resnet50": "ImageNet preset (256 -> 224)"}


def compile_bundle(arch: str, out: Path) -> Path:
    if (out / "manifest.json").is_file():
        return out
    command = [sys.executable, "-m", "resnet_edge", "compile", "--arch", arch, "--random-weights", "--fp32",
               "--backend", "torchscript", "--out", str(out)]
    subprocess.run(command, check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    return out


def python_latency(bundle_dir: Path, frames: list[Path], repeat: int, warmup: int) -> dict:
    bundle = bundle_mod.load(bundle_dir, device="cpu")
    transform = bundle.transform()
    images = [load_rgb(str(path)) for path in frames]
    for _ in range(warmup):
        bundle.predict(transform(images[0]).unsqueeze(0))
    pre, inf = [], []
    for _ in range(repeat):
        for image in images:
            t0 = time.perf_counter()
            x = transform(image).unsqueeze(0)
            t1 = time.perf_counter()
            bundle.predict(x)
            t2 = time.perf_counter()
            pre.append((t1 - t0) * 1e3)
            inf.append((t2 - t1) * 1e3)
    return {"preprocess": statistics.median(pre), "inference": statistics.median(inf), "frames": len(pre)}


def cpp_latency(binary: Path, bundle_dir: Path, frames_dir: Path, threads: int, repeat: int, warmup: int) -> dict:
    command = [str(binary), str(bundle_dir), "--source", str(frames_dir), "--json", "--threads", str(threads),
               "--repeat", str(repeat), "--warmup", str(warmup)]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    rows = [json.loads(line)["latency_ms"] for line in result.stdout.splitlines() if line.strip()]
    return {
        "preprocess": statistics.median(r["preprocess"] for r in rows),
        "inference": statistics.median(r["inference"] for r in rows),
        "frames": len(rows),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="CPU threads on both sides (default 2)")
    parser.add_argument("--frames", type=int, default=20, help="distinct 320x240 frames (default 20)")
    parser.add_argument("--repeat", type=int, default=3, help="passes over the frames (default 3)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed runs first (default 5)")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated archs (default resnet20,resnet50)")
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "cpp_vs_python", help="bundles and frames go here")
    parser.add_argument("--binary", type=Path, default=REPO / "build" / "cpp" / "resnet-edge-infer")
    args = parser.parse_args()
    if not args.binary.is_file():
        print(f"{args.binary} is missing; build it first with `make cpp`", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    frames_dir = args.work / "frames"
    frames = make_frames(frames_dir, count=args.frames)
    rows = []
    for arch in args.models.split(","):
        bundle_dir = compile_bundle(arch, args.work / arch)
        fused = json.loads((bundle_dir / "manifest.json").read_text()).get("fused")
        # Alternate the two sides so background load hits both alike.
        cpp = cpp_latency(args.binary, bundle_dir, frames_dir, args.threads, args.repeat, args.warmup)
        py = python_latency(bundle_dir, frames, args.repeat, args.warmup)
        for side, r in (("C++", cpp), ("Python", py)):
            total = r["preprocess"] + r["inference"]
            rows.append((arch, "fused" if fused else "unfused", side, r["preprocess"], r["inference"], total, 1e3 / total, r["frames"]))
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    print(f"CPU: {cpu}, {args.threads} thread(s); torch {torch.__version__}; 320x240 frames, batch 1, medians\n")
    print("| model | ops | side | preprocess ms | inference ms | total ms | frames/s | frames |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for arch, fused, side, pre, inf, total, fps, n in rows:
        print(f"| {arch} | {fused} | {side} | {pre:.2f} | {inf:.2f} | {total:.2f} | {fps:.1f} | {n} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
