"""INT8 accuracy of the default compile on real images, in both ONNX Q/DQ forms (issue 12).

Datasets that ship inside packages, so nothing is downloaded at run time
(``pip install -r benchmarks/requirements.txt``):

``digits``  scikit-learn's ``load_digits``: 1797 scanned handwritten digits (8x8, 17 grey levels),
            10 classes; every image with index % 10 in {0, 3, 6} is validation (540 images).
``faces``   scikit-image's ``data.lfw_subset``: 100 LFW faces and 100 non-face patches (25x25), 2
            classes; every 4th image is validation (50 images: one image is 2 points).

Each is written as an ImageFolder tree (train/ val/, PNG upscaled to 32x32 RGB), a ResNet-20 is
trained on it with ``resnet-edge train`` (as a user would), compiled to INT8 with ``resnet-edge
compile`` (default flags, i.e. ``--calib-method auto``, and each explicit method) in each form:
``cpu`` (``--backend onnxruntime --target cpu``, the CPU Q/DQ form), ``tensorrt`` (``--backend
onnxruntime --target jetson-orin``, TensorRT's Q/DQ form) and ``openvino`` (``--backend openvino``: the
CPU Q/DQ form run by OpenVINO, issue 15), and checked with ``resnet-edge validate``. Prints a table of
top-1 drop and agreement per method and form, plus compile times, the OpenVINO-vs-ONNX Runtime top-1
difference (issue 15: within 0.1 points), and writes JSON.

    python benchmarks/int8_accuracy.py --out runs/int8-accuracy [--datasets digits faces] [--epochs 15]
    python benchmarks/int8_accuracy.py --out runs/int8-accuracy --forms cpu openvino --methods default max
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

METHODS = ("default", "max", "percentile", "mse", "entropy")
FORMS = {"cpu": ("onnxruntime", "cpu"), "tensorrt": ("onnxruntime", "jetson-orin"), "openvino": ("openvino", "cpu")}
FORM_TITLES = {"cpu": "CPU form", "tensorrt": "TensorRT form", "openvino": "OpenVINO"}
SIZE = 32
TARGET_DROP, TARGET_AGREEMENT = 0.3, 0.995
TARGET_RUNTIME_DIFFERENCE = 0.1  # issue 15: OpenVINO's top-1 within 0.1 points of ONNX Runtime's


def _digits():
    from sklearn.datasets import load_digits

    data = load_digits()
    images = (data.images / 16.0 * 255).round().astype(np.uint8)
    val = [i % 10 in (0, 3, 6) for i in range(len(images))]
    return images, data.target, [str(name) for name in data.target_names], val


def _faces():
    from skimage.data import lfw_subset

    images = (np.clip(lfw_subset(), 0, 1) * 255).round().astype(np.uint8)
    labels = np.array([0] * 100 + [1] * 100)
    val = [i % 4 == 3 for i in range(len(images))]
    return images, labels, ["face", "non-face"], val


DATASETS = {"digits": _digits, "faces": _faces}


def export(name: str, root: Path) -> Path:
    """Write the dataset as ``root/name/{train,val}/<class>/<index>.png`` (32x32 RGB); returns the tree."""
    tree = root / name
    if (tree / "val").is_dir():
        return tree
    images, labels, classes, val = DATASETS[name]()
    for index, (image, label, is_val) in enumerate(zip(images, labels, val)):
        folder = tree / ("val" if is_val else "train") / classes[label]
        folder.mkdir(parents=True, exist_ok=True)
        picture = Image.fromarray(image, mode="L").resize((SIZE, SIZE), Image.BILINEAR).convert("RGB")
        picture.save(folder / f"{index:05d}.png")
    return tree


def cli(*args: str) -> float:
    """Run ``resnet-edge ARGS`` (the installed command next to this Python); seconds taken."""
    command = [str(Path(sys.executable).with_name("resnet-edge")), *args]
    started = time.time()
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode not in (0, 1):  # validate exits 1 when a threshold fails: still a measurement
        raise SystemExit(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return time.time() - started


def measure(tree: Path, weights: Path, work: Path, method: str, form: str) -> dict:
    """Compile with ``method`` for ``form`` and validate: drop, agreement, compile seconds, auto's choice."""
    bundle = work / f"{form}-{method}"
    flags = [] if method == "default" else ["--calib-method", method]
    backend, target = FORMS[form]
    seconds = cli("compile", "--arch", "resnet20", "--weights", str(weights), "--int8", "--calib-data", str(tree),
                  "--backend", backend, "--target", target, *flags, "--out", str(bundle), "--force")
    report = work / f"{form}-{method}.json"
    cli("validate", str(bundle), "--data", str(tree), "--report", str(report))
    result = json.loads(report.read_text())
    manifest = json.loads((bundle / "manifest.json").read_text())
    auto = (manifest.get("calibration") or {}).get("auto")
    return {
        "method": method, "form": form, "top1_drop": result["top1_drop"], "agreement": result["agreement"],
        "reference_top1": result["reference"]["top1"], "compiled_top1": result["compiled"]["top1"],
        "compile_seconds": round(seconds, 1), "auto_chosen": auto["chosen"] if auto else None, "auto": auto,
    }


def run_dataset(name: str, out: Path, epochs: int, forms: list[str], methods: list[str]) -> list[dict]:
    tree = export(name, out / "data")
    run = out / "train" / name
    if not (run / "best.pth").is_file():
        print(f"[{name}] training resnet20 for {epochs} epochs", flush=True)
        cli("train", "--arch", "resnet20", "--data", str(tree), "--epochs", str(epochs), "--batch-size", "64",
            "--workers", "0", "--out", str(run), "--force")
    rows = []
    for form in forms:
        for method in methods:
            row = {"dataset": name, **measure(tree, run / "best.pth", out / "bundles" / name, method, form)}
            print(f"[{name}] {form:<8} {method:<10} drop {row['top1_drop']:+.2f}  agreement {row['agreement']:.4f}"
                  + (f"  (auto chose {row['auto_chosen']})" if row["auto_chosen"] else ""), flush=True)
            rows.append(row)
    return rows


def table(rows: list[dict]) -> str:
    forms = list(dict.fromkeys(row["form"] for row in rows))
    lines = ["| dataset | method | " + " | ".join(f"{FORM_TITLES[f]} drop | {FORM_TITLES[f]} agreement" for f in forms) + " |",
             "|---|---|" + "---:|---:|" * len(forms)]
    for dataset in dict.fromkeys(row["dataset"] for row in rows):
        for method in dict.fromkeys(row["method"] for row in rows):
            cells = {row["form"]: row for row in rows if row["dataset"] == dataset and row["method"] == method}
            label = method if method != "default" else f"default (auto: {' / '.join(str(cells[f]['auto_chosen']) for f in forms)})"
            lines.append(f"| {dataset} | {label} | " + " | ".join(f"{cells[f]['top1_drop']:.2f} | {cells[f]['agreement']:.4f}" for f in forms) + " |")
    return "\n".join(lines)


def runtime_differences(rows: list[dict]) -> list[dict]:
    """OpenVINO's compiled top-1 against ONNX Runtime's (the CPU form: the same Q/DQ model), per dataset and method."""
    cpu = {(row["dataset"], row["method"]): row for row in rows if row["form"] == "cpu"}
    return [{"dataset": row["dataset"], "method": row["method"], "onnxruntime_top1": cpu[key]["compiled_top1"],
             "openvino_top1": row["compiled_top1"], "difference": round(abs(row["compiled_top1"] - cpu[key]["compiled_top1"]), 3)}
            for row in rows if row["form"] == "openvino" and (key := (row["dataset"], row["method"])) in cpu]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/int8-accuracy"))
    parser.add_argument("--datasets", nargs="+", choices=list(DATASETS), default=list(DATASETS))
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--forms", nargs="+", choices=list(FORMS), default=["cpu", "tensorrt"])
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = [row for name in args.datasets for row in run_dataset(name, args.out, args.epochs, args.forms, args.methods)]
    print(table(rows))
    defaults = [row for row in rows if row["method"] == "default"]
    met = all(row["top1_drop"] <= TARGET_DROP and row["agreement"] >= TARGET_AGREEMENT for row in defaults)
    print(f"targets (default flags: drop <= {TARGET_DROP}, agreement >= {TARGET_AGREEMENT}): {'met' if met else 'NOT met'}")
    differences = runtime_differences(rows)
    for entry in differences:
        print(f"[{entry['dataset']}] {entry['method']:<10} top-1 ONNX Runtime {entry['onnxruntime_top1']:.2f}, "
              f"OpenVINO {entry['openvino_top1']:.2f}: difference {entry['difference']:.2f} (target <= {TARGET_RUNTIME_DIFFERENCE})")
    (args.out / "int8_accuracy.json").write_text(
        json.dumps({"rows": rows, "targets_met": met, "runtime_differences": differences}, indent=1) + "\n")
    print(f"wrote {args.out / 'int8_accuracy.json'}")


if __name__ == "__main__":
    main()
