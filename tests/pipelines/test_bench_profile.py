"""``bench --profile``: per-block times from each runtime's own profiler, under diagnose's block names."""

import importlib.util

import pytest
import torch
from click.testing import CliRunner

from resnet_edge.backends.blocks import charge, lookup
from resnet_edge.cli import main
from resnet_edge.pipelines.bench import BenchOptions, run_bench
from resnet_edge.reports.bench import format_profile

BLOCKS = [f"layer{stage}.{index}" for stage in (1, 2, 3) for index in range(3)]
BUNDLES = {
    "onnxruntime-fp32": ["--fp32", "--backend", "onnxruntime"],
    "onnxruntime-int8": ["--int8", "--calib-data", "shapes", "--backend", "onnxruntime"],
    "torchscript-fp32": ["--fp32", "--no-fused", "--backend", "torchscript"],
    "openvino-fp32": ["--fp32", "--backend", "openvino"],
}


def test_lookup_strips_runtime_suffixes():
    table = {"node_Conv_78": "conv1", "relu_1": "layer1.0"}
    assert lookup("node_Conv_78_token_1", table) == "conv1"
    assert lookup("relu_1_nchwc", table) == "layer1.0"
    assert lookup("ReorderOutput_token_48", table) is None


def test_unmapped_kernels_go_to_the_previous_block():
    assert charge([(None, 1.0), ("conv1", 2.0), (None, 3.0), ("layer1.0", 4.0)]) == {"conv1": 6.0, "layer1.0": 4.0}


@pytest.fixture(scope="module", params=list(BUNDLES))
def bundle(request, tmp_path_factory):
    if request.param.startswith("openvino") and importlib.util.find_spec("openvino") is None:
        pytest.skip("openvino not installed")
    out = tmp_path_factory.mktemp("profile") / request.param
    result = CliRunner().invoke(main, ["compile", "--arch", "resnet20", "--random-weights", *BUNDLES[request.param], "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_profile_names_every_residual_block_with_a_positive_time(bundle):
    report = run_bench(BenchOptions(bundle=bundle, batch_sizes=(2,), warmup=1, iters=3, rounds=1, baseline=False,
                                    memory=False, runtimes=False, device="cpu", profile=True)).report
    section = report["profile"]
    assert section["supported"], section
    rows = {row["block"]: row["ms"] for row in section["blocks"]}
    assert set(BLOCKS) <= set(rows), rows
    assert all(rows[block] > 0 for block in BLOCKS)
    assert [row for row in rows if row in BLOCKS] == BLOCKS  # execution order
    table = format_profile(section)
    assert "layer2.1" in table and "total" in table


def test_cli_prints_the_profile_table(tmp_path):
    out = tmp_path / "b"
    runner = CliRunner()
    assert runner.invoke(main, ["compile", "--arch", "resnet20", "--random-weights", "--fp32", "--backend", "onnxruntime", "--out", str(out)]).exit_code == 0
    result = runner.invoke(main, ["bench", str(out), "--batch-sizes", "1", "--iters", "2", "--warmup", "1", "--no-baseline", "--profile"])
    assert result.exit_code == 0, result.output
    assert "profile (onnxruntime" in result.output and "layer3.2" in result.output


def test_tensorrt_layer_names_map_to_blocks():
    from resnet_edge.backends.tensorrt.profile import trt_layer_row

    blocks = ["layer1.0", "layer1.1", "layer2.0"]
    assert trt_layer_row("[CONVOLUTION]-[aten_ops.convolution.default]-[layer1.1.conv2/convolution]", blocks) == "layer1.1"
    assert trt_layer_row("/layer2/0/conv1/Conv + /layer2/0/relu/Relu", blocks) == "layer2.0"
    assert trt_layer_row("[CONVOLUTION]-[conv1/convolution] + [RELU]-[relu]", blocks) == "conv1"
    assert trt_layer_row("Reformatting CopyNode for Input Tensor 0", blocks) is None


@pytest.mark.tensorrt
def test_tensorrt_profile_of_a_raw_engine(tmp_path):
    """bench --profile on a TensorRT bundle: IProfiler times on model.engine, every block present."""
    pytest.importorskip("tensorrt")
    pytest.importorskip("torch_tensorrt")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    out = tmp_path / "trt"
    runner = CliRunner()
    assert runner.invoke(main, ["compile", "--arch", "resnet20", "--random-weights", "--fp16", "--backend", "tensorrt", "--out", str(out)]).exit_code == 0
    result = runner.invoke(main, ["bench", str(out), "--batch-sizes", "1", "--iters", "5", "--warmup", "1", "--no-baseline", "--profile"])
    assert result.exit_code == 0, result.output
    assert "profile (tensorrt" in result.output and "layer3.2" in result.output
