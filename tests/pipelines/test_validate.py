"""``resnet-edge validate``: metrics, a good INT8 bundle passes, a corrupted one fails with exit 1,
baseline round trip, the documented report schema, and every usage error (exit 2, nothing written)."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path
from xml.etree import ElementTree

import pytest
import torch
from click.testing import CliRunner

from resnet_edge import bundle as bundle_io
from resnet_edge.cli import main
from resnet_edge.metrics import ComparisonMeter
from resnet_edge.pipelines.validate.baseline import read_baseline
from resnet_edge.pipelines.compile import CompileOptions, compile_bundle
from resnet_edge.pipelines.validate import ValidateOptions, validate_bundle
from resnet_edge.reports.validate import junit_xml

REPO = Path(__file__).resolve().parents[2]
VAL = "shapes"  # its val split: 600 images
DEMO_SET = REPO / "calibration" / "shapes-demo.json"  # the demo's calibration set
LOOSE = ("--min-agreement", 0.9, "--max-top1-drop", 5)  # for tests of the mechanics, not of the thresholds
ISSUE_KEYS = ("reference", "compiled", "top1_drop", "agreement", "logit_max_abs_err", "cosine", "kl", "passed",
              "thresholds", "bundle", "data", "num_images")


def run_cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


# --------------------------------------------------------------------------------------------- metrics


def test_identical_logits_agree_perfectly():
    meter = ComparisonMeter(4)
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0], [0.0, 3.0, 1.0, 0.0], [0.0, 0.0, 0.0, 5.0]])
    meter.update(logits, logits.clone(), torch.tensor([0, 1, 2]))
    summary = meter.summary(["a", "b", "c", "d"])
    assert summary["agreement"] == 1.0 and summary["top1_drop"] == 0.0
    assert summary["reference"]["top1"] == pytest.approx(200 / 3, abs=1e-3)
    assert summary["logit_max_abs_err"] == 0.0 and summary["cosine"] == pytest.approx(1.0) and summary["kl"] == pytest.approx(0.0, abs=1e-12)
    assert summary["topk"] == 4 and summary["compiled"]["top5"] == 100.0  # top-k capped at the class count
    assert summary["largest_class_drops"] == []


def test_metrics_against_hand_computed_values():
    meter = ComparisonMeter(3)
    reference = torch.tensor([[3.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    compiled = torch.tensor([[3.0, 0.0, 1.0], [2.5, 2.0, 0.0]])  # image 2 flips to class 0
    labels = torch.tensor([0, 1])
    meter.update(reference[:1], compiled[:1], labels[:1])  # two batches: streaming must equal one pass
    meter.update(reference[1:], compiled[1:], labels[1:])
    summary = meter.summary(["x", "y", "z"])
    assert summary["agreement"] == 0.5
    assert summary["reference"]["top1"] == 100.0 and summary["compiled"]["top1"] == 50.0 and summary["top1_drop"] == 50.0
    assert summary["logit_max_abs_err"] == 2.5
    assert summary["logit_mean_abs_err"] == pytest.approx(3.5 / 6, abs=1e-6)
    cos1 = 9 / (3 * math.sqrt(10))
    cos2 = 4 / (2 * math.sqrt(2.5**2 + 4))
    assert summary["cosine"] == pytest.approx((cos1 + cos2) / 2, abs=1e-6)
    p = torch.softmax(reference.double(), 1)
    q = torch.softmax(compiled.double(), 1)
    kl = (p * (p.log() - q.log())).sum(1)
    assert summary["kl"] == pytest.approx(float(kl.mean()), abs=1e-6) and summary["kl_max"] == pytest.approx(float(kl.max()), abs=1e-6)
    assert [row["class"] for row in summary["largest_class_drops"]] == ["y"]
    assert summary["largest_class_drops"][0]["drop"] == 100.0


def test_nonfinite_outputs_are_counted_not_averaged():
    meter = ComparisonMeter(2)
    meter.update(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([[1.0, 0.0], [float("nan"), 1.0]]), None)
    summary = meter.summary()
    assert summary["nonfinite_images"] == 1 and summary["cosine"] == pytest.approx(1.0)
    assert summary["reference"]["top1"] is None and summary["top1_drop"] is None


# ------------------------------------------------------------------------------------------- bundles


@pytest.fixture(scope="module")
def int8_bundle(trained_resnet20_checkpoint, tmp_path_factory) -> Path:
    """The demo model compiled INT8 as the demo does: the default CPU backend (ONNX Runtime), the demo
    calibration set, entropy calibration."""
    out = tmp_path_factory.mktemp("validate") / "r20-int8"
    compile_bundle(
        CompileOptions(arch="resnet20", weights=trained_resnet20_checkpoint, precision="int8", calib_set=DEMO_SET,
                       backend="onnxruntime", out=out),
    )
    return out


@pytest.fixture(scope="module")
def broken_bundle(int8_bundle, tmp_path_factory) -> Path:
    """The same bundle with its activation scales corrupted (every Q/DQ scale of an activation / 40),
    re-hashed so it loads as a well-formed bundle: only validate can tell it is wrong."""
    import onnx
    from onnx import numpy_helper

    out = tmp_path_factory.mktemp("validate-broken") / "r20-int8-broken"
    shutil.copytree(int8_bundle, out)
    manifest = json.loads((out / "manifest.json").read_text())
    model_path = out / manifest["artifacts"]["model"]
    model = onnx.load(str(model_path))
    initializers = {init.name: init for init in model.graph.initializer}
    activation_scales = {node.input[1] for node in model.graph.node if node.op_type == "QuantizeLinear" and node.input[0] not in initializers}
    assert activation_scales
    for name in activation_scales:
        array = numpy_helper.to_array(initializers[name])
        initializers[name].CopyFrom(numpy_helper.from_array(array / 40, name))
    onnx.save(model, str(model_path))
    manifest.pop("files")
    bundle_io.write_manifest(out, manifest)
    bundle_io.load(out)  # well-formed: hashes and host checks pass
    return out


@pytest.fixture(scope="module")
def good_run(int8_bundle, tmp_path_factory):
    directory = tmp_path_factory.mktemp("validate-run")
    # The default thresholds, on the whole val split (600 images), as the demo runs it.
    result = run_cli("validate", int8_bundle, "--data", VAL, "--report", directory / "report.json",
                     "--junit", directory / "junit.xml", "--no-progress")
    return result, directory


def test_good_int8_bundle_passes(good_run):
    result, directory = good_run
    assert result.exit_code == 0, result.output
    assert "PASSED" in result.output and "top-1 agreement" in result.output
    report = json.loads((directory / "report.json").read_text())
    assert report["passed"] is True and report["failed"] == []
    assert report["num_images"] == 600 and report["reference"]["source"] == "manifest"
    assert report["reference"]["top1"] >= 80
    assert report["top1_drop"] <= 1.0 and report["agreement"] >= 0.99
    assert report["cosine"] > 0.99 and report["kl"] < 0.05 and report["nonfinite_images"] == 0
    assert sum(row["images"] for row in report["per_class"]) == 600


def test_report_has_the_documented_schema(good_run):
    _, directory = good_run
    report = json.loads((directory / "report.json").read_text())
    for key in ISSUE_KEYS:
        assert key in report, key
    for side in ("reference", "compiled"):
        assert set(report[side]) >= {"top1", "top5"}
    assert report["thresholds"] == {"max_top1_drop": 1.0, "min_agreement": 0.99, "baseline_tolerance": None}
    assert report["schema"] == "resnet-edge-validate-report" and report["schema_version"] == 1
    doc = (REPO / "docs" / "validate-report.md").read_text()
    section = doc.split("## `resnet-edge validate` report")[1].split("## `resnet-edge bench` report")[0]
    documented = {name.strip("` ") for line in section.splitlines() if line.startswith("| `")
                  for name in line.split("|")[1].split(",")}
    assert set(report) <= documented, set(report) - documented
    assert set(report["host"]) >= {"cpu", "gpu", "versions", "threads"}


def test_junit_lists_every_check(good_run):
    _, directory = good_run
    suites = ElementTree.parse(directory / "junit.xml").getroot()
    cases = suites.findall("./testsuite/testcase")
    assert [case.get("name") for case in cases] == ["top1_drop", "agreement", "finite_outputs"]
    assert suites.get("failures") == "0" and not suites.findall(".//failure")


def test_corrupted_calibration_fails_with_exit_1(broken_bundle, tmp_path):
    result = run_cli("validate", broken_bundle, "--data", VAL, "--limit", 192, "--report", tmp_path / "r.json",
                     "--junit", tmp_path / "j.xml", "--no-progress")
    assert result.exit_code == 1, result.output
    assert "FAILED" in result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("error: validation failed:") and "top-1 drop" in last
    report = json.loads((tmp_path / "r.json").read_text())  # the report is written for a failing run too
    assert report["passed"] is False and "top1_drop" in report["failed"] and "agreement" in report["failed"]
    assert report["top1_drop"] > 1.0 and report["largest_class_drops"]
    failures = ElementTree.parse(tmp_path / "j.xml").getroot().findall(".//failure")
    assert {f.get("message").split()[0] for f in failures} >= {"top-1"}


def test_baseline_round_trip(int8_bundle, tmp_path):
    baseline = tmp_path / "ci" / "baseline.json"
    first = run_cli("validate", int8_bundle, "--data", VAL, "--limit", 96, *LOOSE, "--baseline", baseline, "--update-baseline", "--no-progress")
    assert first.exit_code == 0, first.output
    assert baseline.is_file() and "baseline written" in first.output
    stored = read_baseline(baseline)
    assert stored["baseline"]["updated"] is True

    second = run_cli("validate", int8_bundle, "--data", VAL, "--limit", 96, *LOOSE, "--baseline", baseline, "--report", tmp_path / "r.json", "--no-progress")
    assert second.exit_code == 0, second.output
    report = json.loads((tmp_path / "r.json").read_text())
    names = [check["name"] for check in report["checks"]]
    assert "baseline_top1" in names and "baseline_agreement" in names
    assert report["baseline"]["compiled_top1"] == stored["compiled"]["top1"] and report["compiled"]["top1"] == stored["compiled"]["top1"]

    # An earlier model version 5 points better: this bundle is now a regression.
    stored["compiled"]["top1"] += 5.0
    better = tmp_path / "better.json"
    better.write_text(json.dumps(stored))
    regressed = run_cli("validate", int8_bundle, "--data", VAL, "--limit", 96, *LOOSE, "--baseline", better, "--baseline-tolerance", 0.5, "--no-progress")
    assert regressed.exit_code == 1, regressed.output
    last = regressed.output.strip().splitlines()[-1]
    assert "compiled top-1" in last and "vs baseline" in last

    # A baseline measured on other images is not comparable: a usage error.
    other = run_cli("validate", int8_bundle, "--data", VAL, "--limit", 48, *LOOSE, "--baseline", baseline, "--no-progress")
    assert other.exit_code == 2 and "--update-baseline" in other.output


def test_failed_run_does_not_update_the_baseline(broken_bundle, tmp_path):
    baseline = tmp_path / "baseline.json"
    result = run_cli("validate", broken_bundle, "--data", VAL, "--limit", 48, "--baseline", baseline, "--update-baseline", "--no-progress")
    assert result.exit_code == 1
    assert not baseline.exists() and "not updated" in result.output


def test_explicit_reference_and_api(int8_bundle, trained_resnet20_checkpoint):
    result = validate_bundle(ValidateOptions(bundle=int8_bundle, data=VAL, limit=32, reference=trained_resnet20_checkpoint,
                                             min_agreement=0.9, max_top1_drop=5, progress=False))
    assert result.passed and result.report["reference"]["source"] == "--reference"
    assert result.report["reference"]["sha256"] == json.loads((int8_bundle / "manifest.json").read_text())["reference"]["sha256"]
    assert result.written == {}
    xml = junit_xml(result.report)
    assert xml.startswith("<?xml") and 'tests="3"' in xml


# ------------------------------------------------------------------------------------- usage errors


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--min-agreement", "5"], "--min-agreement is a fraction"),
        (["--max-top1-drop", "-1"], "cannot be negative"),
        (["--limit", "0"], "--limit must be at least 1"),
        (["--update-baseline"], "--update-baseline needs --baseline"),
        (["--baseline", "{tmp}/missing.json"], "no baseline at"),
        (["--data", "shapes:3"], "shapes:N must be an integer"),
        (["--report", "{tmp}"], "is a directory"),
    ],
)
def test_usage_errors_exit_2_and_write_nothing(int8_bundle, tmp_path, extra, message):
    extra = [part.replace("{tmp}", str(tmp_path)) for part in extra]
    args = ["validate", int8_bundle, "--data", VAL, *extra, "--junit", tmp_path / "j.xml", "--no-progress"]
    result = run_cli(*args)
    assert result.exit_code == 2, result.output
    # one line: ours ("error: ...") or click's own ("Error: Invalid value ...")
    error_lines = [line for line in result.output.splitlines() if line.lower().startswith("error:")]
    assert len(error_lines) == 1 and message in error_lines[0], result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "j.xml").exists()


def test_missing_bundle_and_foreign_data_are_usage_errors(int8_bundle, tmp_path):
    missing = run_cli("validate", tmp_path / "nope", "--data", VAL)
    assert missing.exit_code == 2 and "does not exist" in missing.output
    from PIL import Image

    for name in ("a", "b", "c"):
        (tmp_path / "three" / name).mkdir(parents=True)
        Image.new("RGB", (40, 40), (10, 20, 30)).save(tmp_path / "three" / name / "x.png")
    foreign = run_cli("validate", int8_bundle, "--data", tmp_path / "three", "--no-progress")
    assert foreign.exit_code == 2 and re.search(r"has 3 classes and the bundle's model 6", foreign.output)


def test_random_weights_bundle_compares_outputs_without_labels(tmp_path):
    out = tmp_path / "rand"
    compile_bundle(CompileOptions(arch="resnet20", random_weights=True, precision="fp32", backend="onnxruntime", out=out))
    result = validate_bundle(ValidateOptions(bundle=out, data=VAL, limit=16, progress=False))
    report = result.report
    assert report["reference"]["source"] == "random" and report["data"]["labelled"] is False
    assert report["compiled"]["top1"] is None and report["top1_drop"] is None
    assert report["agreement"] == 1.0 and report["logit_max_abs_err"] < 1e-3  # FP32 artifact of the recreated model
    assert result.passed and [c["passed"] for c in report["checks"]] == [None, True, True]


# ------------------------------------------------------------- data classes matched to the model's by name

FOLDER_IMAGES = 90  # the first 90 images of the shapes val split, written as PNG (lossless)


@pytest.fixture(scope="module")
def shapes_folder(tmp_path_factory) -> Path:
    """The first FOLDER_IMAGES shapes val images in ImageFolder layout: the folders sort as circle, cross,
    ring, square, star, triangle, i.e. the bundle's classes in another order."""
    from resnet_edge.data import SHAPE_CLASSES, ShapesDataset

    root = tmp_path_factory.mktemp("shapes-folder")
    dataset = ShapesDataset(150, split="val")
    for index in range(FOLDER_IMAGES):
        image, label = dataset[index]
        (root / SHAPE_CLASSES[label]).mkdir(exist_ok=True)
        image.save(root / SHAPE_CLASSES[label] / f"{index:04d}.png")
    assert sorted(SHAPE_CLASSES) != list(SHAPE_CLASSES)
    return root


def _renamed(folder: Path, target: Path, rename: dict[str, str]) -> Path:
    shutil.copytree(folder, target)
    for old, new in rename.items():
        (target / old).rename(target / new)
    return target


def _top1(int8_bundle, data, **options):
    report = validate_bundle(ValidateOptions(bundle=int8_bundle, data=str(data), progress=False, max_top1_drop=100,
                                             min_agreement=0.0, **options)).report
    return report["reference"]["top1"], report["compiled"]["top1"], report["data"]["classes"]


def test_permuted_class_folders_are_matched_by_name(int8_bundle, shapes_folder):
    expected = _top1(int8_bundle, "shapes", limit=FOLDER_IMAGES)
    ref, compiled, matched = _top1(int8_bundle, shapes_folder)
    assert (ref, compiled) == expected[:2] and ref > 80
    assert matched == {"how": "by-name", "permuted": True} and expected[2]["how"] == "identity"


def test_other_class_names_exit_2_unless_mapped(int8_bundle, shapes_folder, tmp_path):
    renamed = _renamed(shapes_folder, tmp_path / "renamed", {"circle": "disc", "ring": "annulus"})
    refused = run_cli("validate", int8_bundle, "--data", renamed, "--no-progress", "--report", tmp_path / "r.json")
    assert refused.exit_code == 2 and "Traceback" not in refused.output
    error = [line for line in refused.output.splitlines() if line.lower().startswith("error:")]
    assert len(error) == 1 and "'annulus', 'disc'" in error[0] and "--class-map" in error[0] and "--by-index" in error[0]
    assert not (tmp_path / "r.json").exists()
    expected = _top1(int8_bundle, shapes_folder)
    as_json = tmp_path / "map.json"
    as_json.write_text(json.dumps({"disc": "circle", "annulus": "ring"}))
    as_text = tmp_path / "map.txt"
    as_text.write_text("# data name, model name\ndisc\tcircle\nannulus ring\n")
    for mapping in (as_json, as_text):
        ref, compiled, matched = _top1(int8_bundle, renamed, class_map=mapping)
        assert (ref, compiled) == expected[:2] and matched["how"] == "class-map"
    passed = run_cli("validate", int8_bundle, "--data", renamed, "--class-map", as_json, "--no-progress", *LOOSE)
    assert passed.exit_code == 0, passed.output


def test_by_index_compares_labels_by_position(int8_bundle, shapes_folder, tmp_path):
    from resnet_edge.data import SHAPE_CLASSES

    # Folders named after the bundle's class positions: by index, label i is class i again.
    positions = _renamed(shapes_folder, tmp_path / "positions", {name: f"c{i}" for i, name in enumerate(SHAPE_CLASSES)})
    ref, compiled, matched = _top1(int8_bundle, positions, by_index=True)
    assert (ref, compiled) == _top1(int8_bundle, shapes_folder)[:2] and matched == {"how": "by-index", "permuted": False}
    both = run_cli("validate", int8_bundle, "--data", positions, "--by-index", "--class-map", tmp_path / "x.json")
    assert both.exit_code == 2


def test_class_map_module_rules(tmp_path):
    from resnet_edge.core.errors import UsageError
    from resnet_edge.data.classmap import map_classes, read_class_map

    assert map_classes(["b", "a"], ["a", "b"]).indices == (1, 0)
    assert map_classes(["0", "1"], ["x", "y"]).how == "generic"
    assert map_classes(["a", "b"], ["a", "a2"], class_map={"a2": "a"}).indices == (0, 0)
    for bad in ("a b c\n", "\n", "{\"a\": 1}"):
        (tmp_path / "m.txt").write_text(bad)
        with pytest.raises(UsageError):
            read_class_map(tmp_path / "m.txt")
    with pytest.raises(UsageError, match="leaves data classes without a model class"):
        map_classes(["a", "b"], ["a", "c"], class_map={"c": "z"})
