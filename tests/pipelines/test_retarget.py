"""``retarget``: an INT8 bundle rebuilt for another target/backend from its stored ranges equals a fresh
compile from the same ranges, records its parent, and every refusal is one line with exit code 2."""

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from resnet_edge.backends import Backend, BuildConfig, QuantOptions
from resnet_edge.backends.base import check_ranges_support
from resnet_edge.cli import main
from resnet_edge.core.errors import UsageError
from resnet_edge.cli.demo_cmd import DEMO_CALIB_SET
from resnet_edge.core.io import file_sha256
from resnet_edge.pipelines.compile import CompileOptions, compile_bundle
from resnet_edge.pipelines.retarget import RetargetOptions, retarget_bundle
from resnet_edge.quantize import calibration as calibration_module
from resnet_edge.quantize.calibset import load_calibset

DEMO_SET = Path(str(DEMO_CALIB_SET))
CALIB_IMAGES = 64  # enough for max ranges; keeps each build quick


def _onnx():
    import onnx

    return onnx


def qdq_initializers(path: Path) -> dict[str, np.ndarray]:
    """Every initializer of an ONNX graph (weights, scales, zero points) by name."""
    numpy_helper = _onnx().numpy_helper
    return {init.name: numpy_helper.to_array(init) for init in _onnx().load(str(path)).graph.initializer}


def assert_same_graph(a: Path, b: Path) -> None:
    left, right = qdq_initializers(a), qdq_initializers(b)
    assert set(left) == set(right)
    for name in left:
        assert left[name].dtype == right[name].dtype and np.array_equal(left[name], right[name]), name
    nodes = lambda path: [(node.op_type, list(node.input), list(node.output)) for node in _onnx().load(str(path)).graph.node]
    assert nodes(a) == nodes(b)


@pytest.fixture(scope="module")
def cpu_bundle(trained_resnet20_checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("retarget") / "r20-int8-cpu"
    return compile_bundle(CompileOptions(
        arch="resnet20", weights=trained_resnet20_checkpoint, precision="int8", calib_set=DEMO_SET,
        calib_images=CALIB_IMAGES, calib_method="max", backend="onnxruntime", target="cpu", out=out,
    )).path  # fmt: skip


@pytest.fixture(scope="module")
def orin_retargeted(cpu_bundle, tmp_path_factory):
    out = tmp_path_factory.mktemp("retarget") / "r20-int8-orin"
    return retarget_bundle(RetargetOptions(cpu_bundle, "jetson-orin", out))


def test_retarget_to_tensorrt_form_matches_a_fresh_compile_from_the_same_ranges(cpu_bundle, orin_retargeted, trained_resnet20_checkpoint, tmp_path):
    fresh = compile_bundle(CompileOptions(
        arch="resnet20", weights=trained_resnet20_checkpoint, precision="int8", backend="onnxruntime",
        target="jetson-orin", ranges_file=cpu_bundle / "calibration-cache.json", out=tmp_path / "fresh",
    )).path  # fmt: skip
    retargeted = orin_retargeted.path
    assert_same_graph(retargeted / "model.onnx", fresh / "model.onnx")
    assert (retargeted / "calibration-cache.json").read_text() == (fresh / "calibration-cache.json").read_text()
    manifest = orin_retargeted.manifest
    assert manifest["quantization"]["placement"] == "tensorrt" and manifest["target"] == "jetson-orin"
    # symmetric int8 activations, zero points 0: the TensorRT form, scales from the stored (widened) ranges
    zero_points = [v for k, v in qdq_initializers(retargeted / "model.onnx").items() if k.endswith("zero_point")]
    assert zero_points and all(zp.dtype == np.int8 and not zp.any() for zp in zero_points)
    stored = json.loads((cpu_bundle / "calibration-cache.json").read_text())["tensors"]
    widened = json.loads((retargeted / "calibration-cache.json").read_text())["tensors"]
    for name, entry in stored.items():
        amax = max(abs(entry["lowest"]), abs(entry["highest"]))
        assert widened[name] == {"lowest": -amax, "highest": amax}


def test_retarget_records_its_parent_and_compares_simulators(cpu_bundle, orin_retargeted, trained_resnet20_checkpoint):
    record = orin_retargeted.manifest["retarget"]
    assert record["parent"] == str(cpu_bundle)
    assert record["parent_manifest_sha256"] == file_sha256(cpu_bundle / "manifest.json")
    assert record["ranges_from"] == {"file": str(cpu_bundle / "calibration-cache.json"), "sha256": file_sha256(cpu_bundle / "calibration-cache.json")}
    assert record["parent_backend"] == "onnxruntime" and record["parent_target"] == "cpu"
    check = record["simulator_check"]
    assert check["compared"] and check["inputs"] == "calibration" and check["same_form"] is False
    assert check["top1_agreement"] >= 90
    calibration = orin_retargeted.manifest["calibration"]
    parent = json.loads((cpu_bundle / "manifest.json").read_text())
    assert calibration["recalibrated"] is False and calibration["set_hash"] == parent["calibration"]["set_hash"]
    assert calibration["method"] == "max"
    assert orin_retargeted.manifest["reference"]["sha256"] == file_sha256(trained_resnet20_checkpoint)


def test_retarget_back_to_cpu_and_same_form_is_exact(cpu_bundle, orin_retargeted, tmp_path, monkeypatch):
    # cpu -> cpu (another build of the same form): the same graph as the parent, simulators identical
    loads = []
    monkeypatch.setattr(calibration_module, "load_calibset", lambda path: loads.append(path) or load_calibset(path))
    again = retarget_bundle(RetargetOptions(cpu_bundle, "cpu", tmp_path / "again"))
    assert loads == [cpu_bundle / "calibration-set.json"]  # the parent's set loaded and hash-checked once
    assert again.manifest["calibration"]["set_hash"] == json.loads((cpu_bundle / "manifest.json").read_text())["calibration"]["set_hash"]
    assert_same_graph(again.path / "model.onnx", cpu_bundle / "model.onnx")
    check = again.manifest["retarget"]["simulator_check"]
    assert check["same_form"] and check["max_abs_diff"] == 0
    # jetson-orin -> jetson-orin: symmetric ranges stay what they were
    orin_again = retarget_bundle(RetargetOptions(orin_retargeted.path, "datacenter", tmp_path / "dc"))
    assert_same_graph(orin_again.path / "model.onnx", orin_retargeted.path / "model.onnx")
    assert orin_again.manifest["retarget"]["simulator_check"]["max_abs_diff"] == 0


@pytest.mark.skipif(importlib.util.find_spec("openvino") is None, reason="openvino not installed")
def test_retarget_to_openvino_uses_the_same_qdq_graph(cpu_bundle, trained_resnet20_checkpoint, tmp_path):
    moved = tmp_path / "moved.pth"  # --reference: the weights moved since the parent was built
    shutil.copy(trained_resnet20_checkpoint, moved)
    result = retarget_bundle(RetargetOptions(cpu_bundle, "cpu", tmp_path / "ov", backend="openvino", reference=moved))
    assert result.manifest["backend"] == "openvino"
    assert_same_graph(result.path / "model.qdq.onnx", cpu_bundle / "model.onnx")
    check = result.manifest["retarget"]["simulator_check"]
    assert check["same_form"] and check["max_abs_diff"] == 0
    assert result.manifest["reference"]["weights"] == str(moved)


def _copy_with_manifest(bundle: Path, out: Path, edit) -> Path:
    shutil.copytree(bundle, out)
    manifest = json.loads((out / "manifest.json").read_text())
    edit(manifest)
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def _refused(argv: list[str], expected: str) -> None:
    result = CliRunner().invoke(main, ["-q", "retarget", *argv])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], result.output


def test_refusals_are_one_line_exit_2(cpu_bundle, tmp_path):
    out = str(tmp_path / "out")
    _refused([str(tmp_path / "nope"), "--target", "cpu", "--out", out], "does not exist")
    gone = _copy_with_manifest(cpu_bundle, tmp_path / "gone", lambda m: m["reference"].update(weights=str(tmp_path / "missing.pth")))
    _refused([str(gone), "--target", "cpu", "--out", out], "are missing; pass --reference WEIGHTS")
    other = tmp_path / "other.pth"
    other.write_bytes(b"not the weights")
    _refused([str(cpu_bundle), "--target", "cpu", "--reference", str(other), "--out", out], "is not the FP32 reference")

    def drop_cache(manifest):
        manifest["artifacts"].pop("calibration_cache")
        manifest["files"].pop("calibration-cache.json")

    no_ranges = _copy_with_manifest(cpu_bundle, tmp_path / "noranges", drop_cache)
    _refused([str(no_ranges), "--target", "jetson-orin", "--out", out], "stores no ONNX calibration ranges")
    _refused([str(cpu_bundle), "--target", "jetson-orin", "--backend", "openvino", "--out", out], "does not build for --target jetson-orin")
    _refused([str(cpu_bundle), "--target", "cpu", "--backend", "torchscript", "--out", out], "does not build int8")
    _refused([str(cpu_bundle), "--target", "cpu", "--out", str(cpu_bundle), "--force"], "is the bundle being retargeted")
    assert not (tmp_path / "out").exists()


def test_backends_without_stored_range_support_refuse_them():
    config = BuildConfig(arch="resnet20", precision="int8", target="cpu", input_shape=(3, 32, 32),
                         quantization=QuantOptions(ranges_file=Path("calibration-cache.json")))

    class NoRanges(Backend):
        name = "noranges"
        precisions = ("int8",)

    with pytest.raises(UsageError, match="the noranges backend cannot build INT8 from stored ONNX calibration ranges"):
        NoRanges().check_config(config)
    with pytest.raises(UsageError, match="stored calibration ranges are for INT8 builds, not fp32"):
        check_ranges_support(NoRanges(), BuildConfig(arch="resnet20", precision="fp32", target="cpu", input_shape=(3, 32, 32),
                                                     quantization=config.quantization))
    check_ranges_support(NoRanges(), BuildConfig(arch="resnet20", precision="int8", target="cpu", input_shape=(3, 32, 32)))
