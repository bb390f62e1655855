"""Automatic precision fallback: a tight top-1 budget that plain INT8 misses is met by keeping the
fragile layer (and as few others as needed) in float; ``compile --max-top1-drop`` wiring and refusals."""

from __future__ import annotations

import copy
import json

import pytest
from click.testing import CliRunner

pytest.importorskip("modelopt.torch.quantization", reason="nvidia-modelopt is not installed (pip install -r requirements.txt)")

from helpers.fragile import FRAGILE, labelled_shapes, make_fragile  # noqa: E402
from resnet_edge.cli import main  # noqa: E402
from resnet_edge.core.errors import UsageError  # noqa: E402
from resnet_edge.fuse.fold import fold_batchnorm  # noqa: E402
from resnet_edge.pipelines.compile import CompileOptions, compile_bundle  # noqa: E402
from resnet_edge.pipelines.bundling.fallback import plan_fallback  # noqa: E402
from resnet_edge.quantize.evaluation import EvalSet, Evaluator  # noqa: E402
from resnet_edge.quantize.modelopt_ptq import calibrate_folded  # noqa: E402
from resnet_edge.quantize import modelopt_ptq as ptq  # noqa: E402
from resnet_edge.weights import load_weights, save_checkpoint  # noqa: E402

CONFIG = ptq.PTQConfig(method="max")

BUDGET = 2.0  # points (two of the 96 images): plain INT8 of the fragile model drops tens of points


@pytest.fixture(scope="module")
def trained(trained_resnet20_checkpoint):
    return load_weights(trained_resnet20_checkpoint, "resnet20")


@pytest.fixture(scope="module")
def calibration():
    return list(labelled_shapes(64, "train")[0].split(32))


@pytest.fixture(scope="module")
def eval_set():
    images, labels = labelled_shapes(96, "val")
    return EvalSet(list(zip(images.split(48), labels.split(48))))


def test_fallback_meets_a_budget_plain_int8_misses(trained, calibration, eval_set):
    fragile = make_fragile(trained.model)
    quantized = calibrate_folded(fragile, calibration, CONFIG)
    plan = plan_fallback(fragile, calibration, eval_set, BUDGET, CONFIG, quantized=quantized)
    assert plan.int8_drop > BUDGET  # plain INT8 misses the budget
    assert plan.within_budget and plan.final_drop <= BUDGET
    assert plan.layers[0] == FRAGILE and len(plan.layers) <= 4
    assert plan.ranking[0]["layer"] == FRAGILE
    # The plan is what the model now is: those layers off, everything else quantized.
    assert set(ptq.higher_precision_layers(quantized)) == set(plan.layers)
    manifest = plan.manifest()
    assert manifest["layers"] == plan.layers and manifest["max_top1_drop"] == BUDGET
    assert manifest["final_drop"] <= BUDGET < manifest["int8_drop"] and manifest["steps"][0]["action"] == "keep"
    # A fresh calibration with those layers kept in float (what the TensorRT backend builds) meets it too.
    rebuilt = ptq.calibrate(fold_batchnorm(fragile), calibration, ptq.PTQConfig(method="max", keep_fp=tuple(plan.layers)))
    evaluator = Evaluator(eval_set, fragile)
    assert evaluator.fp32_top1 - evaluator.measure(rebuilt).top1 <= BUDGET


def test_no_fallback_when_plain_int8_is_within_budget(trained, calibration, eval_set):
    plan = plan_fallback(trained.model, calibration, eval_set, 100.0, CONFIG)
    assert plan.layers == [] and plan.steps == [] and plan.evaluations == 1 and plan.within_budget


def test_negative_budget_is_refused(trained, calibration, eval_set):
    with pytest.raises(UsageError, match="cannot be negative"):
        plan_fallback(trained.model, calibration, eval_set, -1.0, CONFIG)


# ------------------------------------------------------------------------------------------- compile


def test_compile_records_an_empty_fallback_when_int8_is_within_budget(trained_resnet20_checkpoint, tmp_path):
    out = tmp_path / "r20"
    result = compile_bundle(
        CompileOptions(arch="resnet20", weights=trained_resnet20_checkpoint, precision="int8", calib_data="shapes", calib_images=64,
                       calib_method="max", backend="onnxruntime", val_data="shapes", val_images=96, max_top1_drop=50.0, out=out),
    )
    fallback = result.manifest["quantization"]["fallback"]
    assert fallback["layers"] == [] and fallback["max_top1_drop"] == 50.0 and fallback["num_images"] == 96
    assert json.loads((out / "manifest.json").read_text())["quantization"]["fallback"] == fallback


def test_compile_refuses_when_the_backend_cannot_keep_layers_in_float(trained, tmp_path):
    """ONNX Runtime INT8 keeps only the classifier in float: a plan that needs the fragile conv in
    float cannot be honoured, so the build fails (exit 1) and nothing is written."""
    weights = tmp_path / "fragile.pth"
    save_checkpoint(weights, make_fragile(trained.model), "resnet20", trained.classes, trained.preprocessing)
    out = tmp_path / "bundle"
    result = CliRunner().invoke(main, [
        "compile", "--arch", "resnet20", "--weights", str(weights), "--int8", "--calib-data", "shapes", "--calib-images", "32",
        "--calib-method", "max", "--backend", "onnxruntime", "--val-data", "shapes", "--val-images", "48",
        "--max-top1-drop", str(BUDGET), "--out", str(out),
    ], catch_exceptions=False)
    assert result.exit_code == 1, result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("error: --max-top1-drop") and "--backend tensorrt" in last
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".bundle")]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--int8", "--calib-data", "shapes", "--max-top1-drop", "1"], "needs --val-data"),
        (["--fp32", "--val-data", "shapes", "--max-top1-drop", "1"], "it needs --int8"),
        (["--int8", "--calib-data", "shapes", "--val-data", "shapes", "--max-top1-drop", "-0.5"], "must be >= 0"),
    ],
)
def test_compile_usage_errors(tmp_path, extra, message):
    result = CliRunner().invoke(main, ["compile", "--arch", "resnet20", "--random-weights", *extra, "--out", str(tmp_path / "b")])
    assert result.exit_code == 2, result.output
    assert message in result.output and not (tmp_path / "b").exists()


def test_fallback_plan_does_not_move_the_callers_model(trained, calibration, eval_set):
    model = copy.deepcopy(trained.model)
    plan_fallback(model, calibration, eval_set, 100.0, CONFIG)
    assert all(p.device.type == "cpu" for p in model.parameters()) and not model.training
