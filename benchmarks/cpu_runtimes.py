"""INT8 on the CPU runtimes (issue 15): ONNX Runtime and OpenVINO on the same Q/DQ model, against eager FP32.

    .venv/bin/python benchmarks/cpu_runtimes.py                               # resnet50, 18, 152; batch 1 and 32
    .venv/bin/python benchmarks/cpu_runtimes.py --arch resnet50 --json out.json
    .venv/bin/python benchmarks/cpu_runtimes.py --arch resnet20 --iters 3 --rounds 2 --batch 1 --throughput-batch 4   # smoke

For each arch: compile an INT8 ONNX Runtime bundle (random weights: speed does not depend on them; the
calibration uses real images of the built-in shapes set) and run, interleaved round by round:
``eager-fp32`` (PyTorch), ``onnxruntime-int8`` (the bundle, its default session settings), ``openvino-int8``
(the bundle's Q/DQ ONNX under OpenVINO, via the backend's ``foreign_predictor``), and the ONNX Runtime
session-option variants of item 5 (``--session-variants``: no spinning, extended/basic graph optimisation).
Then each runner is timed *alone* (the others idle, but loaded) and the ratio interleaved/alone shows
whether the runtimes' thread pools disturb one another. Prints ratios to eager FP32 (targets: batch-1
latency >= 6x, batch-32 throughput >= 8x, best runtime <= 1.0x of the other) and writes JSON.

Accuracy (``--weights W --val-data SPEC``): top-1 of the ONNX Runtime bundle and of OpenVINO on the same
model, which must agree within 0.1 points. (benchmarks/int8_accuracy.py's real-image dataset export,
helper P2's, is reused when it exists: pass its exported folder as --val-data.)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from timing import time_interleaved  # noqa: E402

from resnet_edge import bundle  # noqa: E402
from resnet_edge.backends import get_backend  # noqa: E402
from resnet_edge.backends.onnxruntime import SessionSettings, load_file  # noqa: E402
from resnet_edge.models import create_model  # noqa: E402
from resnet_edge.pipelines.compile import CompileOptions, compile_bundle  # noqa: E402

SESSION_VARIANTS = {
    "onnxruntime-int8-nospin": SessionSettings(allow_spinning=False),
    "onnxruntime-int8-extended": SessionSettings(optimization="extended"),
    "onnxruntime-int8-basic": SessionSettings(optimization="basic"),
}


def build(arch: str, out: Path, weights: str | None, calib: str) -> Path:
    compile_bundle(CompileOptions(arch=arch, out=out, precision="int8", backend="onnxruntime", weights=weights,
                                  random_weights=weights is None, calib_data=calib, calib_images=32, calib_method="max"))
    return out


def runners(path: Path, session_variants: bool) -> dict:
    manifest = bundle.read_manifest(path)
    loaded = bundle.load(path)
    torch.manual_seed(0)
    eager = create_model(manifest["arch"], num_classes=manifest["num_classes"]).eval()
    result = {"eager-fp32": lambda b: eager(b), "onnxruntime-int8": loaded.predict}
    openvino = get_backend("openvino")
    if openvino.available()[0]:
        result["openvino-int8"] = bundle.Bundle(path, manifest, openvino, openvino.foreign_predictor(path, manifest)).predict
    if session_variants:
        for name, settings in SESSION_VARIANTS.items():
            predictor = load_file(path / manifest["artifacts"]["model"], manifest["input"]["name"], manifest["output"]["name"], settings)
            result[name] = bundle.Bundle(path, manifest, loaded.backend, predictor).predict
    return result


def p50s(run: dict, batch: torch.Tensor, args, alone: bool) -> dict[str, float]:
    with torch.inference_mode():
        if not alone:
            samples = time_interleaved(run, batch, args.rounds, args.iters, args.warmup)
            return {name: statistics.median(values) for name, values in samples.items()}
        return {name: statistics.median(time_interleaved({name: fn}, batch, args.rounds, args.iters, args.warmup)[name]) for name, fn in run.items()}


def measure(arch: str, args, work: Path) -> dict:
    path = build(arch, work / arch, args.weights, args.calib_data)
    run = runners(path, args.session_variants)
    shape = tuple(bundle.read_manifest(path)["input"]["shape"][1:])
    figures = {"arch": arch, "threads": torch.get_num_threads(), "batches": {}}
    for size in (args.batch, args.throughput_batch):
        batch = torch.randn((size, *shape), generator=torch.Generator().manual_seed(size))
        together, alone = p50s(run, batch, args, False), p50s(run, batch, args, True)
        base = together["eager-fp32"]
        figures["batches"][size] = {
            name: {"p50_ms": round(together[name], 4), "alone_p50_ms": round(alone[name], 4),
                   "speedup_vs_eager": round(base / together[name], 3), "interleaved_over_alone": round(together[name] / alone[name], 3),
                   "throughput": round(size * 1e3 / together[name], 2)}
            for name in run
        }  # fmt: skip
    if args.val_data:
        figures["accuracy"] = accuracy(path, run, args.val_data)
    return figures


def accuracy(path: Path, run: dict, spec: str) -> dict:
    from torch.utils.data import DataLoader

    from resnet_edge.data import eval_transform, open_data
    from resnet_edge.metrics import top1_percent

    loaded = bundle.load(path)
    dataset = open_data(spec).split("val", transform=eval_transform(loaded.preprocessing))
    loader = DataLoader(dataset, batch_size=32)
    top1 = {name: top1_percent(run[name], loader) for name in ("onnxruntime-int8", "openvino-int8") if name in run}
    values = list(top1.values())
    return {"data": spec, "images": len(dataset), "top1": top1, "max_difference": round(max(values) - min(values), 3),
            "within_0.1_points": max(values) - min(values) <= 0.1}  # fmt: skip


def print_table(figures: dict) -> None:
    print(f"\n{figures['arch']} ({figures['threads']} threads, load average {os.getloadavg()[0]:.2f})")
    for size, rows in figures["batches"].items():
        print(f"  batch {size}:  {'runner':28} {'p50 ms':>10} {'alone ms':>10} {'x eager':>8} {'inter/alone':>11}")
        for name, row in rows.items():
            print(f"  {'':9} {name:28} {row['p50_ms']:10.3f} {row['alone_p50_ms']:10.3f} {row['speedup_vs_eager']:8.2f} {row['interleaved_over_alone']:11.2f}")
    if "accuracy" in figures:
        print(f"  top-1: {figures['accuracy']['top1']} (difference {figures['accuracy']['max_difference']})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", action="append", help="repeatable; default resnet50, resnet18, resnet152")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--throughput-batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--session-variants", action="store_true", help="also time the ONNX Runtime session-option variants (item 5)")
    parser.add_argument("--weights", help="trained weights (for --val-data accuracy); default random weights")
    parser.add_argument("--val-data", help="real-image dataset SPEC for the accuracy comparison")
    parser.add_argument("--calib-data", default="shapes")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = []
    with tempfile.TemporaryDirectory(prefix="cpu-runtimes-") as work:
        for arch in args.arch or ["resnet50", "resnet18", "resnet152"]:
            results.append(measure(arch, args, Path(work)))
            print_table(results[-1])
    if args.json:
        args.json.write_text(json.dumps({"results": results, "settings": vars(args) | {"json": str(args.json)}}, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
