"""``--calib-method auto`` (quantize/auto.py): held-out split, scoring, choice, and both quantization paths."""

import math

import pytest
import torch

from helpers.calibration import shapes_images
from resnet_edge.core.errors import UsageError
from resnet_edge.models import create_model
from resnet_edge.quantize import auto
from resnet_edge.quantize.ranges import TensorStats, compute_amax


def batches(images, size=8):
    return [images[i : i + size] for i in range(0, len(images), size)]


def test_held_out_images_are_disjoint_from_range_images_and_deterministic():
    images = torch.arange(30, dtype=torch.float32).reshape(30, 1, 1, 1)
    split = auto.split_held_out(batches(images, 7))
    assert split.held_out_indices == [3, 7, 11, 15, 19, 23, 27]
    assert set(split.held_out_indices).isdisjoint(split.calibration_indices)
    assert sorted(split.held_out_indices + split.calibration_indices) == list(range(30))
    assert split.held_out.flatten().tolist() == [float(i) for i in split.held_out_indices]
    assert torch.cat(split.calibration).flatten().tolist() == [float(i) for i in split.calibration_indices]
    again = auto.split_held_out(batches(images, 5))  # another batching: the same split
    assert again.held_out_indices == split.held_out_indices


def test_too_few_images_for_auto_is_a_usage_error():
    with pytest.raises(UsageError, match="at least 4 images"):
        auto.split_held_out([torch.zeros(3, 1, 1, 1)])


def test_score_prefers_agreement_then_kl():
    reference = torch.tensor([[3.0, 0.0], [0.0, 3.0]])
    assert auto.score(reference, reference) == auto.Score(1.0, 0.0)
    flipped = auto.score(reference, torch.tensor([[3.0, 0.0], [3.0, 0.0]]))
    assert flipped.agreement == 0.5 and flipped.kl > 0
    close = auto.score(reference, reference * 0.9)
    assert close.beats(flipped) and auto.Score(1.0, 0.01).beats(auto.Score(1.0, 0.02))
    assert auto.score(reference, torch.full((2, 2), float("nan"))) == auto.Score(0.0, math.inf)


def _toy_tables():
    # two tensors; candidate ranges differ; "the truth" is amax 1.0 for both
    amaxes = {"max": 2.0, "percentile-99.9": 0.5, "percentile-99.99": 0.9, "percentile-99.999": 1.2, "mse": 1.0, "entropy": 0.8}
    return {label: {"a": value, "b": value * 1.5} for label, value in amaxes.items()}


def _toy_evaluate(reference):
    def evaluate(ranges):
        error = abs(ranges["a"] - 1.0) + abs(ranges["b"] - 1.5)
        return reference + error * torch.tensor([[0.0, 1.0]] * len(reference))
    return evaluate


def test_choose_scores_every_candidate_records_them_and_picks_the_best():
    reference = torch.tensor([[2.0, 0.0]] * 8)
    split = auto.split_held_out([torch.zeros(32, 1, 1, 1)])
    choice = auto.choose(_toy_tables(), _toy_evaluate(reference), reference, split)
    assert set(choice.scores) == set(auto.CANDIDATES)
    assert choice.chosen == "mse" and set(choice.assignment.values()) == {"mse"}
    record = choice.manifest()
    assert [entry["name"] for entry in record["candidates"]] == list(auto.CANDIDATES)
    assert all({"agreement", "kl", "method"} <= set(entry) for entry in record["candidates"])
    assert record["chosen"] == "mse" and record["held_out_images"] == 8 and record["calibration_images"] == 24
    assert record["per_tensor"]["kept"] is False  # nothing beats the exact ranges


def test_per_tensor_mix_is_kept_only_when_it_measurably_wins():
    reference = torch.tensor([[2.0, 0.0]] * 4)
    tables = _toy_tables()
    tables["max"]["b"] = 2.0  # tensor b's best range (2.0) is only the widest rule's; a's is mse's (1.0)

    def evaluate(ranges):
        error = abs(ranges["a"] - 1.0) * 5 + abs(ranges["b"] - 2.0)
        return reference + error * torch.tensor([[0.0, 1.0]] * len(reference))

    split = auto.split_held_out([torch.zeros(16, 1, 1, 1)])
    choice = auto.choose(tables, evaluate, reference, split)
    assert choice.chosen == auto.MIX and choice.assignment["b"] == "max"
    assert choice.mix["kept"] and choice.mix["changes"] == {"b": "max"}
    assert choice.mix["tried"] <= 2 * auto.MIX_TENSORS


def test_auto_is_not_a_range_rule_and_explicit_rules_are_unchanged():
    stats = TensorStats()
    stats.update(torch.linspace(-3, 3, 1001))
    with pytest.raises(UsageError):
        compute_amax(stats, "auto")
    assert compute_amax(stats, "max") == pytest.approx(3.0)


@pytest.fixture(scope="module")
def fp32_onnx(tmp_path_factory):
    from resnet_edge.backends import BatchSpec, BuildConfig
    from resnet_edge.backends.onnx_graph import export_onnx

    torch.manual_seed(0)
    model = create_model("resnet20", num_classes=6).eval()
    path = tmp_path_factory.mktemp("onnx") / "fp32.onnx"
    export_onnx(model, BuildConfig(arch="resnet20", precision="int8", target="cpu", input_shape=(3, 32, 32),
                                   batch=BatchSpec(1, 1, 64)), path)
    return path


@pytest.mark.parametrize("placement", ["onnxruntime-cpu", "tensorrt"])
def test_onnx_auto_chooses_with_each_qdq_form(fp32_onnx, tmp_path, placement):
    pytest.importorskip("onnxruntime")
    from resnet_edge.quantize import ort_calibrate

    images = shapes_images(32)
    result = ort_calibrate.quantize_model(fp32_onnx, tmp_path / "q.onnx", batches(images), "auto", placement, tmp_path)
    assert (tmp_path / "q.onnx").is_file() and result.auto is not None
    record = result.manifest()["calibration_auto"]
    assert record["held_out_images"] == 8 and record["calibration_images"] == 24
    assert {entry["name"] for entry in record["candidates"]} == set(auto.CANDIDATES)
    assert record["chosen"] in (*auto.CANDIDATES, auto.MIX)
    if result.auto.chosen != auto.MIX:  # the written ranges are the chosen candidate's, from the range images only
        from resnet_edge.quantize.onnx_collect import collect_stats
        from resnet_edge.quantize.ranges import compute_range

        method, params = auto.CANDIDATES[result.auto.chosen]
        split = auto.split_held_out(batches(images))
        stats, _ = collect_stats(tmp_path / "prepared.onnx", split.calibration, True, tmp_path)
        expected = {name: compute_range(stat, method, placement == "tensorrt", **params) for name, stat in stats.items()}
        assert result.ranges == expected


def test_onnx_explicit_method_is_unchanged(fp32_onnx, tmp_path):
    pytest.importorskip("onnxruntime")
    from resnet_edge.quantize import ort_calibrate
    from resnet_edge.quantize.onnx_collect import collect_stats
    from resnet_edge.quantize.ranges import compute_range

    images = shapes_images(16)
    result = ort_calibrate.quantize_model(fp32_onnx, tmp_path / "q.onnx", batches(images), "percentile", "onnxruntime-cpu", tmp_path)
    stats, seen = collect_stats(tmp_path / "prepared.onnx", batches(images), True, tmp_path)
    assert seen == 16 and result.auto is None and "calibration_auto" not in result.manifest()
    assert result.ranges == {name: compute_range(stat, "percentile", False) for name, stat in stats.items()}


def test_modelopt_auto_scores_with_the_fake_quant_model():
    ptq = pytest.importorskip("resnet_edge.quantize.modelopt_ptq")
    pytest.importorskip("modelopt")
    from resnet_edge.fuse.fold import fold_batchnorm

    torch.manual_seed(0)
    model = fold_batchnorm(create_model("resnet20", num_classes=6).eval())
    images = shapes_images(16)
    quantized, choice = ptq.calibrate_with_choice(model, batches(images), ptq.PTQConfig(method="auto"))
    assert choice is not None and set(choice.scores) == set(auto.CANDIDATES)
    assert choice.held_out_images == 4 and choice.calibration_images == 12
    section = ptq.quantization_manifest(quantized, ptq.PTQConfig(method="auto"), choice=choice)
    assert section["calibration_auto"]["chosen"] == choice.chosen
    from resnet_edge.quantize.modelopt_auto import candidate_tables

    tables = candidate_tables(quantized)
    quantizers = dict(ptq.iter_quantizers(quantized))
    for name, label in choice.assignment.items():  # the chosen amaxes are the ones loaded
        assert float(quantizers[name].amax) == pytest.approx(tables[label][name])
    plain = ptq.calibrate_with_choice(model, batches(images), ptq.PTQConfig(method="max"))
    assert plain[1] is None
