"""Per-layer INT8 sensitivity: a layer made deliberately fragile is ranked first, in both modes.

The fragile layer: in block ``layer2.1`` one channel of ``bn1``'s output is scaled by K and the
matching input slice of ``conv2``'s weight divided by K. The FP32 function is unchanged (ReLU is
positively homogeneous), but ``conv2``'s per-tensor input quantizer must now span a K-times larger
range and its per-output-channel weight scales bury that slice: quantizing ``layer2.1.conv2`` alone
wrecks the model, and keeping it alone in float repairs it.
"""

from __future__ import annotations

import copy
import json

import pytest
import torch
from click.testing import CliRunner

pytest.importorskip("modelopt.torch.quantization", reason="nvidia-modelopt is not installed (pip install -r requirements.txt)")

from resnet_edge.checkpoint import load_weights  # noqa: E402
from resnet_edge.cli import main  # noqa: E402
from resnet_edge.data import ShapesDataset, eval_transform, get_preset  # noqa: E402
from resnet_edge.core.errors import UsageError  # noqa: E402
from resnet_edge.quantize import modelopt_ptq as ptq  # noqa: E402
from resnet_edge.quantize.sensitivity import EvalSet, analyze, calibrate_folded, format_table, select_layers  # noqa: E402

FRAGILE = "layer2.1.conv2"
K = 1000.0
CONFIG = ptq.PTQConfig(method="max")


def make_fragile(model: torch.nn.Module, block: str = "layer2.1", channel: int = 3, factor: float = K) -> torch.nn.Module:
    """A copy of ``model`` computing the same function with one outlier channel inside ``block``."""
    fragile = copy.deepcopy(model).eval()
    module = fragile.get_submodule(block)
    with torch.no_grad():
        module.bn1.weight[channel] *= factor
        module.bn1.bias[channel] *= factor
        module.conv2.weight[:, channel] /= factor
    return fragile


def _images(count: int, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    dataset = ShapesDataset(count, split=split, transform=eval_transform(get_preset("cifar")))
    images, labels = zip(*(dataset[index] for index in range(count)))
    return torch.stack(images), torch.tensor(labels)


@pytest.fixture(scope="module")
def trained(trained_resnet20_checkpoint) -> torch.nn.Module:
    return load_weights(trained_resnet20_checkpoint, "resnet20").model


@pytest.fixture(scope="module")
def calibration() -> list[torch.Tensor]:
    return list(_images(64, "train")[0].split(32))


@pytest.fixture(scope="module")
def eval_set() -> EvalSet:
    images, labels = _images(48, "val")
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
