"""ONNX Runtime backend on ImageNet-size nets with random weights (speed-measurement bundles):
every precision builds, loads through bundle.load and agrees with PyTorch FP32."""

import pytest
import torch

from resnet_edge import bundle
from resnet_edge.backends import BatchSpec, BuildConfig, CalibrationData, Predictor, QuantOptions, get_backend
from resnet_edge.pipelines.compile import CompileOptions, compile_bundle
from resnet_edge.models import create_model

ARCHS = ["resnet18", pytest.param("resnet50", marks=pytest.mark.slow)]


def inputs(count=6, size=224):
    return torch.randn(count, 3, size, size, generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(arch, precision) -> CompileResult, built once per module."""
    cache = {}

    def build(arch, precision):
        if (arch, precision) not in cache:
            out = tmp_path_factory.mktemp(f"{arch}-{precision}") / "bundle"
            options = CompileOptions(
                arch=arch, random_weights=True, precision=precision, backend="onnxruntime", out=out,
                calib_data="shapes:240" if precision == "int8" else None, calib_images=8, calib_method="max",
            )
            cache[arch, precision] = compile_bundle(options)
        return cache[arch, precision]

    return build


def shapes_images(count=6):
    """Images like the calibration set's (shapes, ImageNet preprocessing): INT8 ranges fit them, not noise."""
    from resnet_edge.data import eval_transform, get_preset, open_data

    dataset = open_data("shapes:240").split("val", transform=eval_transform(get_preset("imagenet")))
    return torch.stack([dataset[i][0] for i in range(count)])


def reference(arch):
    torch.manual_seed(0)  # compile --random-weights seeds 0 before building the model
    return create_model(arch).eval()


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("precision, tolerance", [("fp32", 1e-4), ("fp16", 1e-2)])
def test_float_precisions_match_pytorch(built, arch, precision, tolerance):
    result = built(arch, precision)
    assert result.manifest["reference"]["random_weights"] and result.manifest["reference"]["source"] == "random"
    images = inputs()
    with torch.inference_mode():
        expected = reference(arch)(images)
    actual = bundle.load(result.path).predict(images)
    assert (actual - expected).abs().max() <= tolerance * expected.abs().max()
    assert torch.equal(actual.argmax(1), expected.argmax(1))


@pytest.mark.parametrize("arch", ARCHS)
def test_int8_runs_integer_kernels_and_tracks_fp32(built, arch):
    result = built(arch, "int8")
    loaded = bundle.load(result.path)
    session = loaded.predictor.session
    assert session.get_providers() == ["CPUExecutionProvider"]
    assert loaded.predictor.device == torch.device("cpu") and loaded.predictor.module is None
    images = shapes_images()
    with torch.inference_mode():
        expected = reference(arch)(images)
    actual = loaded.predict(images)
    relative = (actual - expected).abs().max() / expected.abs().max()
    assert relative < 0.15
    simulated = loaded.simulator()(images)
    assert (simulated - actual).abs().max() / actual.abs().max() < 0.05
    assert result.manifest["quantization"]["placement"] == "onnxruntime-cpu"
    assert result.manifest["calibration"]["classes_match"] is False  # shapes images for an ImageNet net


def test_int8_cpu_graph_fuses_into_qlinear_ops(built, tmp_path):
    """After ORT's optimizer the CPU placement is integer end to end: QLinearConv, no float Conv."""
    import onnxruntime as ort

    result = built("resnet18", "int8")
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(str(result.path / "model.onnx"), options, providers=["CPUExecutionProvider"])
    import onnx

    ops = [node.op_type for node in onnx.load(str(tmp_path / "optimized.onnx")).graph.node]
    assert ops.count("QLinearConv") == 20 and "Conv" not in ops and "FusedConv" not in ops


def test_backend_contract_directly_with_a_static_batch(tmp_path):
    backend = get_backend("onnxruntime")
    assert backend.available()[0]
    model = create_model("resnet20").eval()
    batches = [torch.randn(5, 3, 32, 32, generator=torch.Generator().manual_seed(i)) for i in range(2)]
    config = BuildConfig(arch="resnet20", precision="int8", target="cpu", input_shape=(3, 32, 32), batch=BatchSpec.fixed(3),
                         calibration=CalibrationData("percentile", lambda: iter(batches), 10),
                         quantization=QuantOptions(keep_float=("layer2.0.conv1",)))
    backend.check_config(config)
    result = backend.build(model, config, tmp_path)
    assert result.artifacts == {"model": "model.onnx", "calibration_cache": "calibration-cache.json"}
    assert result.manifest["quantization"]["higher_precision_layers"] == ["fc", "layer2.0.conv1"]
    import onnx

    graph = onnx.load(str(tmp_path / "model.onnx")).graph
    kept = next(node for node in graph.node if node.op_type == "Conv" and node.input[1] == "layer2.0.conv1.weight")
    assert all(node.output[0] != kept.input[1] for node in graph.node)  # its weight is a plain float initializer
    manifest = {"artifacts": result.artifacts, "input": {"name": "input"}, "output": {"name": "logits"}, "target": "cpu", "precision": "int8"}
    predict = backend.load(tmp_path, manifest, "cpu")
    assert isinstance(predict, Predictor) and predict.device == torch.device("cpu") and predict.module is None
    assert predict(batches[0][:3]).shape == (3, 10)
    simulate = backend.simulator(tmp_path, manifest)
    assert isinstance(simulate, Predictor) and simulate.device == torch.device("cpu")
    assert simulate(batches[0][:3]).shape == (3, 10)
