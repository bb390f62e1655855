"""ModelOpt INT8 post-training quantization (resnet_edge.quantize.modelopt_ptq), on the CPU.

The calibration step, the placement of every quantizer (convs, classifier, the residual add), the
fake-quant model's agreement with FP32, the layer switches sensitivity and the fallback build on, and every refusal.
The torch.export of the Q/DQ graph needs CUDA tensors (see the module docstring) and is tested
where a GPU exists.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

pytest.importorskip("modelopt.torch.quantization", reason="nvidia-modelopt is not installed (pip install -r requirements.txt)")

from helpers.calibration import shapes_images  # noqa: E402
from resnet_edge.core.errors import UsageError  # noqa: E402
from resnet_edge.data import ShapesDataset, eval_transform, get_preset  # noqa: E402
from resnet_edge.fuse.fold import fold_batchnorm  # noqa: E402
from resnet_edge.models import create_model  # noqa: E402
from resnet_edge.quantize import modelopt_ptq as ptq  # noqa: E402
from resnet_edge.weights import load_weights  # noqa: E402


@pytest.fixture(scope="module")
def calib_batches() -> list[torch.Tensor]:
    return list(shapes_images(64).split(16))


@pytest.fixture(scope="module")
def val_images() -> torch.Tensor:
    return shapes_images(96, split="val")


@pytest.fixture(scope="module")
def fp32_model() -> nn.Module:
    torch.manual_seed(0)
    return create_model("resnet20").eval()


@pytest.fixture(scope="module")
def quantized(fp32_model, calib_batches) -> nn.Module:
    return ptq.calibrate(fp32_model, calib_batches)


def _enabled(model) -> dict[str, torch.nn.Module]:
    return {name: q for name, q in ptq.iter_quantizers(model) if q.is_enabled}


def test_every_conv_and_the_classifier_get_input_and_weight_quantizers(quantized):
    enabled = _enabled(quantized)
    for name, module in quantized.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            weight = enabled[f"{name}.weight_quantizer"]
            assert f"{name}.input_quantizer" in enabled
            assert weight.amax.shape[0] == module.weight.shape[0], "weights are quantized per output channel"
            assert torch.all(weight.amax > 0)
    assert not any(".bn" in name for name in enabled), "BatchNorm folds into the conv; it gets no Q/DQ"


def test_each_residual_block_quantizes_its_shortcut_input(quantized):
    blocks = [name for stage in ("layer1", "layer2", "layer3") for name in (f"{stage}.{i}" for i in range(3))]
    layers = ptq.quantized_layers(quantized)
    for block in blocks:
        assert layers[block] == ["residual_quantizer"]
        amax = getattr(quantized.get_submodule(block), "residual_quantizer").amax
        assert amax.numel() == 1 and float(amax) > 0, "per-tensor, calibrated"


def test_traced_forward_puts_qdq_on_every_residual_add(quantized):
    # The graph the forward really executes: each add takes the Q/DQ'd shortcut.
    with torch.no_grad():
        graph = torch.jit.trace(quantized, torch.randn(2, 3, 32, 32), check_trace=False).inlined_graph
    nodes = list(graph.nodes())
    adds = [node for node in nodes if node.kind() == "aten::add"]
    assert len(adds) == 9
    for add in adds:
        producers = [value.node() for value in add.inputs()]
        assert any(p.kind() == "prim::PythonOp" and p.pyname() == "FakeTensorQuantFunction" for p in producers)
    qdq = [node for node in nodes if node.kind() == "prim::PythonOp" and node.pyname() == "FakeTensorQuantFunction"]
    assert len(qdq) == len(_enabled(quantized)) == 19 * 2 + 2 + 1 + 9  # convs, fc, avgpool input, adds


def test_without_residual_quantization_the_adds_stay_float(fp32_model, calib_batches):
    model = ptq.calibrate(fp32_model, calib_batches[:1], ptq.PTQConfig(quantize_residual=False))
    assert not [name for name in _enabled(model) if name.endswith("residual_quantizer")]


def test_calibration_leaves_the_fp32_model_alone(fp32_model, quantized, val_images):
    assert not ptq.is_quantized(fp32_model)
    assert ptq.is_quantized(quantized)
    fresh = copy.deepcopy(fp32_model)
    with torch.no_grad():
        assert torch.equal(fp32_model(val_images[:4]), fresh(val_images[:4]))


def test_fake_quant_model_tracks_fp32(fp32_model, quantized, val_images):
    with torch.no_grad():
        reference, simulated = fp32_model(val_images), quantized(val_images)
    agreement = (reference.argmax(1) == simulated.argmax(1)).float().mean().item()
    relative = ((simulated - reference).norm() / reference.norm()).item()
    assert agreement >= 0.9, f"INT8 fake-quant agrees with FP32 on only {agreement:.0%} of images"
    assert relative < 0.1
    assert not torch.equal(reference, simulated), "the quantizers are active"


@pytest.mark.parametrize("arch", ["resnet20", "resnet50", "plain20"])
def test_quantized_block_forward_equals_the_original_with_quantizers_off(arch):
    # The residual-quantized forward re-states BasicBlock/Bottleneck.forward; prove it is the same maths.
    torch.manual_seed(0)
    model = create_model(arch, num_classes=10).eval()
    images = torch.randn(4, 3, 32, 32)
    quantized = ptq.calibrate(model, [images])
    ptq.disable_layers(quantized, ["*"])
    with torch.no_grad():
        torch.testing.assert_close(quantized(images), model(images), rtol=1e-5, atol=1e-5)
    has_residual = any(name.endswith("residual_quantizer") for name, _ in ptq.iter_quantizers(quantized))
    assert has_residual == (arch != "plain20"), "plain nets have no add to quantize"


def test_dataloader_of_image_label_pairs_calibrates(fp32_model):
    dataset = ShapesDataset(24, split="train", transform=eval_transform(get_preset("cifar")))
    seen = []
    model = ptq.calibrate(fp32_model, DataLoader(dataset, batch_size=8), ptq.PTQConfig(num_batches=2), progress=seen.append)
    assert seen == [8, 8], "num_batches stops the loop; progress reports images per batch"
    assert ptq.higher_precision_layers(model) == []


@pytest.mark.parametrize("method", ["max", "mse", "percentile", "entropy"])
def test_every_calibration_method_sets_finite_ranges(fp32_model, calib_batches, val_images, method):
    model = ptq.calibrate(fp32_model, calib_batches[:2], ptq.PTQConfig(method=method))
    for name, quantizer in _enabled(model).items():
        assert torch.isfinite(quantizer.amax).all() and (quantizer.amax > 0).all(), name
    with torch.no_grad():
        agreement = (model(val_images).argmax(1) == fp32_model(val_images).argmax(1)).float().mean().item()
    assert agreement >= 0.85, f"{method}: {agreement:.0%}"


def test_percentile_and_entropy_clip_below_the_max(fp32_model, calib_batches):
    ranges = {}
    for method in ("max", "percentile", "entropy"):
        model = ptq.calibrate(fp32_model, calib_batches[:2], ptq.PTQConfig(method=method))
        ranges[method] = float(model.get_submodule("layer3.2.conv2").input_quantizer.amax)
    assert ranges["percentile"] <= ranges["max"]
    assert ranges["entropy"] <= ranges["max"] * 1.001


def test_per_tensor_weights_when_asked(fp32_model, calib_batches):
    model = ptq.calibrate(fp32_model, calib_batches[:1], ptq.PTQConfig(per_channel_weights=False))
    assert model.get_submodule("layer1.0.conv1").weight_quantizer.amax.numel() == 1


def test_disable_and_enable_layers_round_trip(quantized, val_images):
    model = copy.deepcopy(quantized)
    with torch.no_grad():
        before = model(val_images[:8])
        assert ptq.disable_layers(model, ["fc"]) == ["fc"]
        assert ptq.higher_precision_layers(model) == ["fc"]
        assert not torch.equal(model(val_images[:8]), before)
        assert ptq.enable_layers(model, ["fc"]) == ["fc"]
        assert torch.equal(model(val_images[:8]), before), "the calibrated range survives the switch"
        stage = ptq.disable_layers(model, ["layer3.*"])
        assert "layer3.0" in stage and "layer3.2.conv2" in stage and "layer2.0" not in stage
        ptq.enable_layers(model, ["*"])
        with ptq.layers_disabled(model, ["conv1", "layer1.0"]) as names:
            assert names == ["conv1", "layer1.0"]
            assert set(ptq.higher_precision_layers(model)) == {"conv1", "layer1.0"}
        assert ptq.higher_precision_layers(model) == []
        assert torch.equal(model(val_images[:8]), before)


def test_keep_fp_leaves_layers_in_higher_precision(fp32_model, calib_batches):
    model = ptq.calibrate(fp32_model, calib_batches[:1], ptq.PTQConfig(keep_fp=("conv1", "fc")))
    assert ptq.higher_precision_layers(model) == ["conv1", "fc"]
    summary = ptq.quantization_manifest(model, ptq.PTQConfig(keep_fp=("conv1", "fc")), simulated_top1=0.5)
    assert summary["tool"] == "modelopt" and summary["format"] == "QDQ" and summary["placement"] == "tensorrt"
    assert summary["higher_precision_layers"] == ["conv1", "fc"] and summary["simulated_top1"] == 0.5
    assert summary["tool_version"] == ptq.modelopt_version()


def test_legacy_dict_config_of_older_modelopt_is_extended_the_same_way(monkeypatch, fp32_model, calib_batches):
    # ModelOpt < 0.4x (the releases Jetson images carry) spells INT8_DEFAULT_CFG as a pattern dict.
    mtq = ptq.require_modelopt()
    legacy = {
        "quant_cfg": {
            # old releases apply "default" first wherever it stands; 0.47 reads the dict in order
            "default": {"enable": False},
            "*weight_quantizer": {"num_bits": 8, "axis": 0},
            "*input_quantizer": {"num_bits": 8, "axis": None},
            "nn.BatchNorm2d": {"*": {"enable": False}},
        },
        "algorithm": "max",
    }
    monkeypatch.setattr(mtq, "INT8_DEFAULT_CFG", legacy)
    config = ptq.modelopt_config(ptq.PTQConfig(per_channel_weights=False))
    assert config["quant_cfg"]["*residual_quantizer"] == {"num_bits": 8, "axis": None, "enable": True}
    assert config["quant_cfg"]["*weight_quantizer"]["axis"] is None
    model = ptq.calibrate(fp32_model, calib_batches[:1])
    assert "layer2.0" in ptq.quantized_layers(model)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "minmax"}, "unknown calibration method 'minmax'"),
        ({"num_batches": 0}, "at least 1"),
        ({"percentile": 20.0}, "percentile must lie in"),
    ],
)
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(UsageError, match=message):
        ptq.PTQConfig(**kwargs)


def test_empty_calibration_set_is_refused(fp32_model):
    with pytest.raises(UsageError, match="yielded no images"):
        ptq.calibrate(fp32_model, [])


def test_batches_that_are_not_images_are_refused(fp32_model):
    with pytest.raises(UsageError, match="must be an image tensor"):
        ptq.calibrate(fp32_model, [["not", "images"]])


def test_unknown_layer_names_are_refused(quantized):
    with pytest.raises(UsageError, match="no quantized layer is called 'layer9.0'"):
        ptq.disable_layers(copy.deepcopy(quantized), ["layer9.0"])


def test_export_on_the_cpu_is_refused_with_the_reason(quantized):
    with pytest.raises(UsageError, match="needs it on a CUDA GPU.*tensorrt::quantize_op"):
        ptq.export_for_tensorrt(quantized, torch.randn(2, 3, 32, 32))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="torch.export of ModelOpt Q/DQ needs a CUDA GPU; none is visible")
@pytest.mark.parametrize("batch", [None, (1, 4, 8)])
def test_export_on_a_gpu_has_one_quantize_op_per_quantizer(fp32_model, calib_batches, batch):
    model = ptq.calibrate(fp32_model, calib_batches[:2], device="cuda")
    program = ptq.export_for_tensorrt(model, torch.randn(4, 3, 32, 32, device="cuda"), batch=batch)
    assert ptq.count_qdq_nodes(program) == len(_enabled(model))
    graph = program.graph_module.graph
    adds = [node for node in graph.nodes if node.op == "call_function" and "add" in str(node.target)]
    assert len(adds) >= 9
    block_adds = [node for node in adds if any("quantize_op" in str(arg.target) for arg in node.args if hasattr(arg, "target"))]
    assert len(block_adds) == 9, "both the conv branch and the Q/DQ'd shortcut feed each residual add"
    ptq.disable_layers(model, ["fc"])
    program = ptq.export_for_tensorrt(model, torch.randn(4, 3, 32, 32, device="cuda"))
    assert ptq.count_qdq_nodes(program) == len(_enabled(model))


@pytest.mark.parametrize("method", ["max", "entropy"])
def test_int8_accuracy_of_a_trained_resnet20_stays_within_a_point_of_fp32(trained_resnet20_checkpoint, method):
    loaded = load_weights(trained_resnet20_checkpoint)
    transform = eval_transform(loaded.preprocessing)
    calibration = ShapesDataset(256, split="train", transform=transform)
    validation = ShapesDataset(600, split="val", transform=transform)
    model = fold_batchnorm(loaded.model)  # what the TensorRT backend calibrates
    quantized = ptq.calibrate(model, (images for images, _ in DataLoader(calibration, batch_size=64)), ptq.PTQConfig(method=method))

    def top1(net) -> float:
        correct = 0
        with torch.no_grad():
            for images, labels in DataLoader(validation, batch_size=100):
                correct += int((net(images).argmax(1) == labels).sum())
        return 100.0 * correct / len(validation)

    fp32, int8 = top1(model), top1(quantized)
    assert fp32 > 80.0, f"the trained reference reaches only {fp32:.1f}%"
    assert int8 >= fp32 - 1.0, f"INT8 ({method}) {int8:.1f}% vs FP32 {fp32:.1f}%"
