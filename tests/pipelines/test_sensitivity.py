"""Per-layer INT8 sensitivity: a layer made deliberately fragile is ranked first, in both modes.

The fragile layer (``helpers.fragile``): quantizing ``layer2.1.conv2`` alone wrecks the model, and
keeping it alone in float repairs it.
"""

from __future__ import annotations

import copy
import json

import pytest
import torch
from click.testing import CliRunner

pytest.importorskip("modelopt.torch.quantization", reason="nvidia-modelopt is not installed (pip install -r requirements.txt)")

from helpers.fragile import FRAGILE, labelled_shapes, make_fragile  # noqa: E402
from resnet_edge.cli import main  # noqa: E402
from resnet_edge.core.errors import UsageError  # noqa: E402
from resnet_edge.pipelines.sensitivity import analyze, select_layers  # noqa: E402
from resnet_edge.quantize.evaluation import EvalSet  # noqa: E402
from resnet_edge.quantize.modelopt_ptq import calibrate_folded  # noqa: E402
from resnet_edge.quantize import modelopt_ptq as ptq  # noqa: E402
from resnet_edge.reports.sensitivity import format_table  # noqa: E402
from resnet_edge.weights import load_weights  # noqa: E402

CONFIG = ptq.PTQConfig(method="max")


@pytest.fixture(scope="module")
def trained(trained_resnet20_checkpoint) -> torch.nn.Module:
    return load_weights(trained_resnet20_checkpoint, "resnet20").model


@pytest.fixture(scope="module")
def calibration() -> list[torch.Tensor]:
    return list(labelled_shapes(64, "train")[0].split(32))


@pytest.fixture(scope="module")
def eval_set() -> EvalSet:
    images, labels = labelled_shapes(48, "val")
    return EvalSet([(images, labels)])


@pytest.fixture(scope="module")
def fragile(trained) -> torch.nn.Module:
    return make_fragile(trained)


@pytest.fixture(scope="module")
def fragile_quantized(fragile, calibration) -> torch.nn.Module:
    return calibrate_folded(fragile, calibration, CONFIG)


def test_fragile_model_computes_the_same_function(trained, fragile, eval_set):
    images = eval_set.batches[0][0]
    with torch.no_grad():
        torch.testing.assert_close(fragile(images), trained(images), rtol=1e-4, atol=1e-3)


def test_fragile_layer_is_ranked_first_in_both_modes(fragile, calibration, eval_set, fragile_quantized):
    result = analyze(fragile, calibration, eval_set, CONFIG, mode="both", quantized=copy.deepcopy(fragile_quantized))
    assert result.int8_drop > 20, "the fragile model should lose a lot in plain INT8"
    first = result.layers[0]
    assert first.layer == FRAGILE and first.rank == 1 and first.kind == "conv"
    only = sorted(result.layers, key=lambda e: -(e.only_drop or 0))
    revert = sorted(result.layers, key=lambda e: -(e.revert_gain or 0))
    assert only[0].layer == FRAGILE and revert[0].layer == FRAGILE
    assert first.only_drop > 20 and first.revert_gain > 20
    assert result.evaluations == 1 + 2 * len(result.layers)
    layers = {entry.layer for entry in result.layers}
    assert {"conv1", "fc", "layer1.0", "layer3.2.conv2"} <= layers  # convs, classifier, residual adds
    table = format_table(result, top=5)
    assert FRAGILE in table.splitlines()[3] and "more layers" in table
    payload = result.to_dict()
    assert payload["layers"][0]["layer"] == FRAGILE and payload["int8_drop"] == result.int8_drop


def test_analysis_restores_the_quantizer_switches(fragile_quantized, fragile, calibration, eval_set):
    model = copy.deepcopy(fragile_quantized)
    before = {name: q.is_enabled for name, q in ptq.iter_quantizers(model)}
    analyze(fragile, calibration, eval_set, CONFIG, mode="only", quantized=model, layers=["layer2.1.*"])
    assert {name: q.is_enabled for name, q in ptq.iter_quantizers(model)} == before


def test_layer_selection():
    names = ["conv1", "layer1.0.conv1", "layer1.0", "fc"]
    assert select_layers(names, ["layer1.*", "fc"]) == ["layer1.0.conv1", "layer1.0", "fc"]
    assert select_layers(names, ["layer1.0.*"]) == ["layer1.0.conv1"]
    with pytest.raises(UsageError, match="matches no quantized layer"):
        select_layers(names, ["layer9.*"])


def test_cli_writes_a_ranked_json_report(trained_resnet20_checkpoint, tmp_path):
    report = tmp_path / "sensitivity.json"
    result = CliRunner().invoke(main, [
        "sensitivity", "--arch", "resnet20", "--weights", str(trained_resnet20_checkpoint), "--data", "shapes",
        "--calib-data", "shapes", "--calib-images", "32", "--calib-method", "max", "--val-images", "48",
        "--mode", "revert", "--layers", "layer3.2.*", "--layers", "fc", "--report", str(report),
    ], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    payload = json.loads(report.read_text())
    assert payload["schema"] == "resnet-edge-sensitivity-report" and payload["mode"] == "revert"
    assert [entry["rank"] for entry in payload["layers"]] == [1, 2, 3]
    assert {entry["layer"] for entry in payload["layers"]} == {"layer3.2.conv1", "layer3.2.conv2", "fc"}
    assert payload["data"]["num_images"] == 48 and payload["calibration"]["num_images"] == 32
    assert all(entry["only_drop"] is None and entry["revert_gain"] is not None for entry in payload["layers"])
    assert "rank" in result.output and "revert: gain" in result.output


@pytest.mark.parametrize(
    "extra, message",
    [
        ([], "needs real calibration images"),
        (["--calib-data", "shapes", "--calib-set", "x.json"], "either --calib-data or --calib-set"),
        (["--calib-data", "shapes", "--val-images", "0"], "--val-images must be at least 1"),
        (["--calib-data", "shapes", "--weights", "{tmp}/none.pth"], "does not exist"),
    ],
)
def test_usage_errors(tmp_path, extra, message):
    extra = [part.replace("{tmp}", str(tmp_path)) for part in extra]
    result = CliRunner().invoke(main, ["sensitivity", "--arch", "resnet20", "--data", "shapes", *extra, "--report", str(tmp_path / "r.json")])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "r.json").exists()
