"""``resnet-edge diagnose``: block outputs of every CPU artifact form against FP32 and the INT8 simulator,
the divergence rule and verdict, the outputs (JSON, table, plot), and a corrupted scale found at its block."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from resnet_edge import bundle as bundle_io
from resnet_edge.cli import main
from resnet_edge.pipelines.compile import CompileOptions, compile_bundle
from resnet_edge.pipelines.diagnose import DiagnoseOptions, diagnose_bundle
from resnet_edge.pipelines.diagnose.metrics import divergence, verdict

REPO = Path(__file__).resolve().parents[2]
DEMO_SET = REPO / "calibration" / "shapes-demo.json"
BLOCKS = [f"layer{s}.{b}" for s in (1, 2, 3) for b in range(3)]


def run_cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def bundles(trained_resnet20_checkpoint, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("diagnose")
    forms = {
        "int8-cpu": dict(precision="int8", backend="onnxruntime", target="cpu"),
        "int8-trt-form": dict(precision="int8", backend="onnxruntime", target="jetson-orin"),
        "fp32-ort": dict(precision="fp32", backend="onnxruntime"),
        "fp32-ts": dict(precision="fp32", backend="torchscript"),
        "int8-ov": dict(precision="int8", backend="openvino"),
        "fp32-ov": dict(precision="fp32", backend="openvino"),
    }
    out = {}
    for name, settings in forms.items():
        calib = dict(calib_set=DEMO_SET, calib_method="entropy") if settings["precision"] == "int8" else {}
        compile_bundle(CompileOptions(arch="resnet20", weights=trained_resnet20_checkpoint, out=root / name, **settings, **calib))
        out[name] = root / name
    return out


@pytest.mark.parametrize("form", ["int8-cpu", "int8-trt-form", "int8-ov"])
def test_int8_forms_compare_simulator_and_artifact(bundles, form, tmp_path):
    result = diagnose_bundle(DiagnoseOptions(bundle=bundles[form], data="shapes", images=24, report=tmp_path / "d.json"))
    report = json.loads((tmp_path / "d.json").read_text())
    assert [row["block"] for row in report["rows"]] == BLOCKS
    for row in report["rows"]:
        assert 20 < row["simulator_sqnr_db"] < 80 and 20 < row["artifact_sqnr_db"] < 80
        assert row["artifact_cosine"] > 0.99 and row["artifact_vs_simulator_sqnr_db"] > 20
    assert report["verdict"]["source"] == "none" and result.verdict == report["verdict"]


@pytest.mark.parametrize("form", ["fp32-ort", "fp32-ts", "fp32-ov"])
def test_fp32_artifacts_match_fp32_at_every_block(bundles, form):
    result = diagnose_bundle(DiagnoseOptions(bundle=bundles[form], data="shapes", images=16))
    assert all(row["artifact_sqnr_db"] > 90 for row in result.rows) and "simulator_sqnr_db" not in result.rows[0]
    assert result.verdict["source"] == "none"


def test_cli_table_report_and_plot(bundles, tmp_path):
    pytest.importorskip("matplotlib")
    result = run_cli("diagnose", bundles["int8-cpu"], "--data", "shapes", "--images", 16,
                     "--report", tmp_path / "d.json", "--plot", tmp_path / "d.png")
    assert result.exit_code == 0, result.output
    assert "layer2.1" in result.output and "verdict: none" in result.output
    assert "artifact read as: the bundle's own artifact with the 9 block outputs added" in result.output
    assert json.loads((tmp_path / "d.json").read_text())["artifact_reading"].startswith("the bundle's own artifact")
    assert (tmp_path / "d.png").read_bytes()[:4] == b"\x89PNG" and (tmp_path / "d.json").is_file()


def test_corrupted_block_scale_is_found_at_its_block(bundles, tmp_path):
    """An activation scale corrupted in the bundle's Q/DQ graph: the simulator reads the same file, so the
    loss shows in the simulator too (verdict: quantization), first at the corrupted block."""
    import onnx
    from onnx import numpy_helper

    out = tmp_path / "broken"
    shutil.copytree(bundles["int8-cpu"], out)
    manifest = json.loads((out / "manifest.json").read_text())
    model = onnx.load(str(out / "model.onnx"))
    inits = {init.name: init for init in model.graph.initializer}
    quant = next(n for n in model.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == _block_tensor(model, "layer2.1"))
    scale = numpy_helper.to_array(inits[quant.input[1]])
    inits[quant.input[1]].CopyFrom(numpy_helper.from_array(scale / 30, quant.input[1]))
    onnx.save(model, str(out / "model.onnx"))
    manifest.pop("files")
    bundle_io.write_manifest(out, manifest)
    result = diagnose_bundle(DiagnoseOptions(bundle=out, data="shapes", images=24))
    assert result.diverged["simulator"]["block"] == "layer2.1"
    assert result.verdict == {**result.verdict, "source": "quantization", "block": "layer2.1"}


def _block_tensor(model, block):
    from resnet_edge.backends.onnx_graph import onnx_block_tensors

    return onnx_block_tensors(model.graph, BLOCKS)[block]


def test_divergence_rule_and_verdict():
    assert divergence([35, 34, 12, 10], BLOCKS[:4], 20, 6)["block"] == "layer1.2"
    assert divergence([35, 34, 26, 25], BLOCKS[:4], 20, 6)["block"] == "layer1.2"  # fell 8 dB
    assert divergence([90, 70, 60, 55], BLOCKS[:4], 20, 6) is None  # above 40 dB nothing counts
    sim = {"block": "layer2.0", "index": 3, "reason": "x"}
    art = {"block": "layer1.1", "index": 1, "reason": "y"}
    assert verdict({"simulator": sim, "artifact": sim}, True)["source"] == "quantization"
    assert verdict({"simulator": None, "artifact": art}, True) == {**verdict({"simulator": None, "artifact": art}, True), "source": "engine", "block": "layer1.1"}
    assert verdict({"simulator": sim, "artifact": art}, True)["source"] == "engine"
    assert verdict({"artifact": None}, False)["source"] == "none"


def test_usage_errors_exit_2(bundles, tmp_path):
    assert run_cli("diagnose", bundles["fp32-ort"], "--data", "shapes", "--images", 0).exit_code == 2
    assert run_cli("diagnose", bundles["fp32-ort"], "--data", "shapes", "--report", tmp_path).exit_code == 2


@pytest.mark.parametrize("suffix, magic", [("svg", b"<?xml"), ("PDF", b"%PDF")])
def test_plot_format_follows_the_file_name(bundles, tmp_path, suffix, magic):
    pytest.importorskip("matplotlib")
    plot = tmp_path / f"d.{suffix}"
    result = run_cli("diagnose", bundles["fp32-ort"], "--data", "shapes", "--images", 4, "--plot", plot)
    assert result.exit_code == 0, result.output
    assert plot.read_bytes().lstrip()[: len(magic)] == magic


def test_unknown_plot_suffix_is_refused_before_any_work(tmp_path):
    # The bundle does not exist: the plot is refused before anything looks for it.
    result = run_cli("diagnose", tmp_path / "no-bundle", "--data", "shapes", "--plot", tmp_path / "d.gif", "--report", tmp_path / "d.json")
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [f"error: --plot {tmp_path / 'd.gif'}: the file name must end in .png, .svg or .pdf"]
    assert list(tmp_path.iterdir()) == []
