"""INT8 on the CPU runtimes (issue 15): ONNX Runtime and OpenVINO bundles of the same model, against eager FP32.

    .venv/bin/python benchmarks/cpu_runtimes.py                               # resnet50, 18, 152; batch 1 and 32
    .venv/bin/python benchmarks/cpu_runtimes.py --arch resnet50 --session-variants --placement-variants --nncf --shared-process
    .venv/bin/python benchmarks/cpu_runtimes.py --arch resnet20 --iters 3 --rounds 2 --throughput-batch 4   # smoke

For each arch: compile an INT8 ONNX Runtime bundle and an INT8 OpenVINO bundle (``resnet-edge compile
--int8 --backend onnxruntime|openvino``; random weights: speed does not depend on them; calibrated on 32
images of the built-in shapes set with ``max``, the same Q/DQ model for both) and time, batch 1 and the
throughput batch: ``eager-fp32`` (PyTorch), ``onnxruntime-int8``, ``openvino-int8``, and on request

* ``--session-variants`` (item 5): the ONNX Runtime bundle with other session options: no spinning,
  ``extended`` and ``basic`` graph optimisation (the bundle's default is ``all`` with spinning);
* ``--placement-variants`` (item 5): the stem convolution left in float (``--keep-float conv1``), and the
  residual ``Add`` left out of the quantized op types (a benchmark-only variant patched into one compile);
* ``--nncf`` (item 1): NNCF's own post-training quantization of the OpenVINO FP32 IR (``nncf.quantize``,
  the performance preset, the same 32 calibration images), run as the OpenVINO bundle runs.

**Each runner has its own process** (``timing.ProcessRunners``) and they take turns round by round, so
no runtime's threads (PyTorch's OpenMP pool, ONNX Runtime's spinning workers, OpenVINO's streams) compete
with another's. ``--shared-process`` also times eager and the two bundles interleaved in this one process
and prints shared/own-process: above 1 the runtimes disturb one another when they share a process.
Prints ratios to eager FP32 (targets: batch-1 latency >= 6x, throughput-batch >= 8x) and writes JSON.

Accuracy of the same two runtimes on real images is ``benchmarks/int8_accuracy.py --forms cpu openvino``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from timing import ProcessRunners, time_interleaved  # noqa: E402

from resnet_edge import bundle  # noqa: E402
from resnet_edge.backends.onnxruntime import SessionSettings, load_file  # noqa: E402
from resnet_edge.backends.openvino import compile_file  # noqa: E402
from resnet_edge.core.hostinfo import host_facts  # noqa: E402
from resnet_edge.models import create_model  # noqa: E402
from resnet_edge.pipelines.compile import CompileOptions, compile_bundle  # noqa: E402
from resnet_edge.quantize import ort_calibrate  # noqa: E402

MAIN = ("eager-fp32", "onnxruntime-int8", "openvino-int8")
SESSION_VARIANTS = {
    "onnxruntime-int8-nospin": SessionSettings(allow_spinning=False),
    "onnxruntime-int8-extended": SessionSettings(optimization="extended"),
    "onnxruntime-int8-basic": SessionSettings(optimization="basic"),
}
CALIB_IMAGES = 32


def make_runner(recipe: dict):
    """The callable a worker process times: batch -> logits (module level: spawned processes import it)."""
    if recipe["kind"] == "eager":
        torch.manual_seed(0)
        model = create_model(recipe["arch"], num_classes=recipe["num_classes"]).eval()
        return model
    if recipe["kind"] == "bundle":
        return bundle.load(Path(recipe["path"])).predict
    if recipe["kind"] == "ort-session":
        manifest = bundle.read_manifest(Path(recipe["path"]))
        settings = SessionSettings(**recipe["settings"])
        return load_file(Path(recipe["path"]) / manifest["artifacts"]["model"], manifest["input"]["name"], manifest["output"]["name"], settings)
    if recipe["kind"] == "openvino-ir":
        return compile_file(Path(recipe["path"]), "f32")
    raise ValueError(f"unknown runner kind {recipe['kind']!r}")


@contextlib.contextmanager
def residual_add_in_float():
    """Item 5's residual-add variant, for one compile: the CPU placement with ``Add`` left out of the
    quantized op types (the add then runs in float between DequantizeLinear and QuantizeLinear). Patched
    in here, not a product option: it exists to be measured against the default placement."""
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    original = ort_calibrate._placement_options

    def without_add(placement: str):
        options, activations = original(placement)
        if placement == "onnxruntime-cpu":
            options = {**options, "op_types_to_quantize": sorted((set(QDQRegistry) | set(QLinearOpsRegistry) | {"GlobalAveragePool"}) - {"Add"})}
        return options, activations

    ort_calibrate._placement_options = without_add
    try:
        yield
    finally:
        ort_calibrate._placement_options = original


def compile_random(arch: str, out: Path, calib: str, backend: str = "onnxruntime", precision: str = "int8", **extra) -> Path:
    """A random-weights bundle (speed does not depend on the weights); INT8 calibrated with ``max`` on ``CALIB_IMAGES`` of ``calib``."""
    compile_bundle(CompileOptions(arch=arch, out=out, precision=precision, backend=backend, random_weights=True,
                                  calib_data=calib, calib_images=CALIB_IMAGES, calib_method="max", **extra))
    return out


def nncf_model(arch: str, work: Path, calib: str) -> Path:
    """NNCF's INT8 IR of the OpenVINO FP32 bundle, calibrated on the first ``CALIB_IMAGES`` train images of ``calib``."""
    import nncf
    import openvino

    from resnet_edge.data import open_data

    fp32 = bundle.load(compile_random(arch, work / "openvino-fp32", calib, backend="openvino", precision="fp32"))
    images = open_data(calib).split("train", transform=fp32.transform())
    items = [images[index][0].unsqueeze(0).numpy() for index in range(min(CALIB_IMAGES, len(images)))]
    model = openvino.Core().read_model(str(fp32.path / fp32.manifest["artifacts"]["model"]))
    quantized = nncf.quantize(model, nncf.Dataset(items), preset=nncf.QuantizationPreset.PERFORMANCE, subset_size=len(items))
    path = work / "nncf-int8.xml"
    openvino.save_model(quantized, str(path))
    return path


def recipes(arch: str, work: Path, args) -> dict[str, dict]:
    """Build what each runner needs; name -> recipe for ``make_runner``."""
    ort = compile_random(arch, work / "onnxruntime-int8", args.calib_data)
    result = {
        "eager-fp32": {"kind": "eager", "arch": arch, "num_classes": bundle.read_manifest(ort)["num_classes"]},
        "onnxruntime-int8": {"kind": "bundle", "path": str(ort)},
        "openvino-int8": {"kind": "bundle", "path": str(compile_random(arch, work / "openvino-int8", args.calib_data, backend="openvino"))},
    }
    if args.nncf:
        result["openvino-nncf-int8"] = {"kind": "openvino-ir", "path": str(nncf_model(arch, work, args.calib_data))}
    if args.session_variants:
        for name, settings in SESSION_VARIANTS.items():
            result[name] = {"kind": "ort-session", "path": str(ort), "settings": asdict(settings)}
    if args.placement_variants:
        stem = compile_random(arch, work / "float-stem", args.calib_data, keep_float=("conv1",))
        with residual_add_in_float():
            add = compile_random(arch, work / "float-add", args.calib_data)
        result["onnxruntime-int8-float-stem"] = {"kind": "bundle", "path": str(stem)}
        result["onnxruntime-int8-float-add"] = {"kind": "bundle", "path": str(add)}
    return result


def shared_process(plan: dict[str, dict], batch: torch.Tensor, rounds: int, iters: int, warmup: int) -> dict[str, float]:
    """p50 of the main runners all in this process, interleaved (the disturbance comparison)."""
    runners = {name: make_runner(plan[name]) for name in MAIN}
    with torch.inference_mode():
        return {name: statistics.median(values) for name, values in time_interleaved(runners, batch, rounds, iters, warmup).items()}


def measure(arch: str, args, work: Path) -> dict:
    plan = recipes(arch, work, args)
    shape = tuple(bundle.read_manifest(Path(plan["onnxruntime-int8"]["path"]))["input"]["shape"][1:])
    figures = {"arch": arch, "threads": args.threads, "load_average_before": round(os.getloadavg()[0], 2), "batches": {}}
    with ProcessRunners(plan, make_runner, args.threads) as runners:
        for size, iters in ((1, args.iters), (args.throughput_batch, args.throughput_iters)):
            batch = torch.randn((size, *shape), generator=torch.Generator().manual_seed(size))
            own = {name: statistics.median(values) for name, values in runners.time(batch, args.rounds, iters, args.warmup).items()}
            rows = {name: {"p50_ms": round(value, 3), "speedup_vs_eager": round(own["eager-fp32"] / value, 3),
                           "images_per_s": round(size * 1e3 / value, 2)} for name, value in own.items()}
            if args.shared_process:
                for name, value in shared_process(plan, batch, args.rounds, iters, args.warmup).items():
                    rows[name].update(shared_p50_ms=round(value, 3), shared_over_own=round(value / own[name], 3))
            figures["batches"][size] = rows
    figures["load_average_after"] = round(os.getloadavg()[0], 2)
    return figures


def print_table(figures: dict) -> None:
    print(f"\n{figures['arch']} ({figures['threads']} threads; load average {figures['load_average_before']} before, "
          f"{figures['load_average_after']} after; each runner in its own process)")
    for size, rows in figures["batches"].items():
        print(f"  batch {size}:  {'runner':30} {'p50 ms':>10} {'x eager':>8} {'img/s':>9} {'shared/own':>10}")
        for name, row in rows.items():
            shared = f"{row['shared_over_own']:10.2f}" if "shared_over_own" in row else f"{'':10}"
            print(f"  {'':9} {name:30} {row['p50_ms']:10.3f} {row['speedup_vs_eager']:8.2f} {row['images_per_s']:9.1f} {shared}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", action="append", help="repeatable; default resnet50, resnet18, resnet152")
    parser.add_argument("--throughput-batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--iters", type=int, default=20, help="timed calls per round at batch 1")
    parser.add_argument("--throughput-iters", type=int, default=4, help="timed calls per round at the throughput batch")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--session-variants", action="store_true", help="ONNX Runtime session-option variants (item 5)")
    parser.add_argument("--placement-variants", action="store_true", help="float stem conv / float residual add (item 5)")
    parser.add_argument("--nncf", action="store_true", help="NNCF's quantization of the OpenVINO IR (pip install -r benchmarks/requirements.txt)")
    parser.add_argument("--shared-process", action="store_true", help="also time the main runners in one process")
    parser.add_argument("--calib-data", default="shapes")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="cpu-runtimes-") as work:
        for arch in args.arch or ["resnet50", "resnet18", "resnet152"]:
            (Path(work) / arch).mkdir()
            results.append(measure(arch, args, Path(work) / arch))
            print_table(results[-1])
    if args.json:
        payload = {"results": results, "host": host_facts(), "settings": vars(args) | {"json": str(args.json)}}
        args.json.write_text(json.dumps(payload, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
