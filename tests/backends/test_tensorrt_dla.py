"""DLA builds by TensorRT generation (issue 25), the parts that run without TensorRT: the version dispatch
and its refusals, the builder flags against the real bindings' ``BuilderFlag`` members, the Q/DQ graph's
ranges turned into the float network's dynamic ranges, the FP16 export of the strongly typed route, the
placement read from inspector JSON (``tests/fixtures/tensorrt_inspector``, hand-written from NVIDIA's
documented schema: see each file's ``_note``) and the ``hardware_compatible`` refusal.

The builds themselves need TensorRT and a DLA (Jetson AGX Orin / Orin NX): the ``tensorrt``-marked tests
at the end skip elsewhere, the H200 included (it has no DLA).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from helpers.backend_tensorrt_signatures import BUILDER_FLAGS, COMPILE_2_8, COMPILE_2_14, CONVERT_2_8, CONVERT_2_14, HAS_SET_DYNAMIC_RANGE
from helpers.calibration import shapes_images
from resnet_edge.backends import BatchSpec, BuildConfig
from resnet_edge.backends.onnx_graph import onnx_block_tensors
from resnet_edge.backends.tensorrt import api, dla, dla_network, dla_routes, dla_source
from resnet_edge.backends.tensorrt.environment import check_dla_support, dla_core_count
from resnet_edge.backends.tensorrt.placement import check_dla_fraction, constituents, layer_device, placement_of
from resnet_edge.core.errors import CheckFailed, UsageError
from resnet_edge.fuse.fold import fold_batchnorm
from resnet_edge.models import create_model

FIXTURES = Path(__file__).parent.parent / "fixtures" / "tensorrt_inspector"
BLOCKS = [f"layer{s}.{b}" for s in (1, 2, 3) for b in range(3)]


def _fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def _config(precision: str) -> BuildConfig:
    return BuildConfig(arch="resnet20", precision=precision, target="jetson-orin", input_shape=(3, 32, 32), batch=BatchSpec.fixed(2))


# ------------------------------------------------------------------------------ version dispatch


@pytest.mark.parametrize(("version", "route"), [
    ("10.0.1", dla_routes.WEAKLY_TYPED), ("10.3.0.30", dla_routes.WEAKLY_TYPED), ("10.7.0", dla_routes.WEAKLY_TYPED),
    ("11.4.1.2", dla_routes.STRONGLY_TYPED), ("11.5.0", dla_routes.STRONGLY_TYPED), ("12.0.0", dla_routes.STRONGLY_TYPED),
])
def test_each_tensorrt_generation_takes_its_dla_route(version, route):
    assert dla_routes.dla_route(version) == route


@pytest.mark.parametrize("version", ["11.0.0.114", "11.1.0.106", "11.3.0.99", "11.4.0.106", "10.8.0.43", "10.13.3.9", "8.6.1", None])
def test_a_tensorrt_without_dla_is_refused_in_one_line(version):
    with pytest.raises(UsageError, match=r"^--dla-core: no DLA in this TensorRT") as error:
        dla_routes.dla_route(version)
    assert "\n" not in str(error.value) and "11.4.1+ has it only on Jetson AGX Orin with JetPack 7.2.2+" in str(error.value)


def test_int8_on_the_dla_needs_tensorrt_10s_implicit_quantization():
    assert dla_routes.check_route_request("10.3.0", "int8") == dla_routes.WEAKLY_TYPED
    assert dla_routes.check_route_request("11.4.1", "fp16") == dla_routes.STRONGLY_TYPED
    with pytest.raises(UsageError, match="implicit quantization, which TensorRT 11.4.1 removed; build --fp16"):
        dla_routes.check_route_request("11.4.1", "int8")


def test_environment_check_refuses_before_any_work():
    trt = lambda version: api.TrtVersions("2.8.0", version, "2.8.0")  # noqa: E731
    check_dla_support(api.ENABLED_PRECISIONS, trt("10.3.0"), 0, 2, "int8", 0.95)
    check_dla_support(api.STRONGLY_TYPED, trt("11.4.1"), 1, 2, "fp16")
    with pytest.raises(UsageError, match=r"no DLA in this TensorRT \(11.4.1, which reports no DLA cores here\)"):
        check_dla_support(api.STRONGLY_TYPED, trt("11.4.1"), 0, 0, "fp16")  # the SBSA package off JetPack, or Thor
    with pytest.raises(UsageError, match="removed; build --fp16"):
        check_dla_support(api.STRONGLY_TYPED, trt("11.4.1"), 0, 2, "int8")
    with pytest.raises(UsageError, match="applies to --dla-core builds only"):
        check_dla_support(api.STRONGLY_TYPED, trt("11.4.1"), None, 0, "fp16", 0.5)
    for bad in (1.5, -0.1, float("nan")):
        with pytest.raises(UsageError, match="share of the convolutions, 0 to 1"):
            check_dla_support(api.ENABLED_PRECISIONS, trt("10.3.0"), 0, 2, "fp16", bad)
    check_dla_support(api.STRONGLY_TYPED, trt("11.1.0"), None, 0)  # no --dla-core: nothing to check


# ------------------------------------------------------------------------------ flag selection


@pytest.mark.parametrize(("wheel", "precisions"), [("10.3.0", ("fp16", "int8")), ("10.13.3.9", ("fp16", "int8")),
                                                   ("11.1.0.106", ("fp16",)), ("11.4.0.106", ("fp16",))])
def test_the_flags_of_each_route_exist_in_the_real_bindings(wheel, precisions):
    """Each generation's flags against the BuilderFlag members of that wheel's tensorrt.so (10.13 and 11.1 /
    11.4.0 stand for their generation's bindings; their own DLA is refused by version)."""
    route = dla_routes.WEAKLY_TYPED if wheel.startswith("10.") else dla_routes.STRONGLY_TYPED
    for precision in precisions:
        assert set(dla_routes.builder_flags(route, precision)) <= BUILDER_FLAGS[wheel]
    assert {"FP16", "INT8", "OBEY_PRECISION_CONSTRAINTS"}.isdisjoint(BUILDER_FLAGS["11.4.0.106"])
    assert HAS_SET_DYNAMIC_RANGE[wheel] == (route == dla_routes.WEAKLY_TYPED)


def test_builder_settings_record_the_route_and_its_flags():
    int8 = dla.builder_settings("int8", 1, 1024, "10.3.0")
    assert (int8["route"], int8["flags"], int8["DLA_core"]) == (dla_routes.WEAKLY_TYPED, ["GPU_FALLBACK", "FP16", "INT8"], 1)
    fp16 = dla.builder_settings("fp16", 0, None, "11.4.1.2")
    assert (fp16["route"], fp16["flags"]) == (dla_routes.STRONGLY_TYPED, ["GPU_FALLBACK"])
    assert "strongly typed" in fp16["network"] and fp16["profiling_verbosity"] == "DETAILED"
    with pytest.raises(UsageError, match="no DLA in this TensorRT"):
        dla.builder_settings("fp16", 0, None, "11.1.0")


class _Recorder:
    """Collects ``set_flag`` calls (the part of IBuilderConfig ``apply_flags`` uses)."""

    def __init__(self) -> None:
        self.flags: list = []

    def set_flag(self, flag) -> None:
        self.flags.append(flag)


def test_flags_a_tensorrt_lacks_are_one_clear_failure_not_an_attribute_error():
    trt11_flags = SimpleNamespace(**{name: f"BuilderFlag.{name}" for name in BUILDER_FLAGS["11.4.0.106"]})
    config = _Recorder()
    assert dla_network.apply_flags(trt11_flags, config, ["GPU_FALLBACK"]) == ["GPU_FALLBACK"]
    assert config.flags == ["BuilderFlag.GPU_FALLBACK"]
    with pytest.raises(CheckFailed, match="has no BuilderFlag.FP16"):
        dla_network.apply_flags(trt11_flags, _Recorder(), ["GPU_FALLBACK", "FP16"])


# ------------------------------------------------------------------------------ ranges -> dynamic ranges


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """resnet20 folded, its float32 export and the export of its ModelOpt calibration (the DLA's INT8 source)."""
    pytest.importorskip("modelopt.torch.quantization", reason="nvidia-modelopt is not installed")
    import copy

    from resnet_edge.quantize import modelopt_ptq

    torch.manual_seed(0)
    folded = fold_batchnorm(create_model("resnet20").eval())
    quantized = modelopt_ptq.calibrate(copy.deepcopy(folded), [shapes_images(8)], modelopt_ptq.PTQConfig())
    work = tmp_path_factory.mktemp("dla")
    dla.export_onnx(folded, _config("fp16"), work / "float.onnx")
    dla.export_onnx(quantized, _config("int8"), work / dla.ONNX_FILE)
    return SimpleNamespace(folded=folded, quantized=quantized, float_path=work / "float.onnx", qdq_path=work / dla.ONNX_FILE)


def _run(model, images: torch.Tensor) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": images.numpy()})[0]


def test_stripping_the_qdq_graph_keeps_its_amax_and_gives_the_float_network_back(exported):
    import onnx

    qdq = onnx.load(str(exported.qdq_path))
    stripped, ranges, conflicts = dla_source.strip_qdq(qdq)
    onnx.checker.check_model(stripped)
    assert not {"QuantizeLinear", "DequantizeLinear"} & {node.op_type for node in stripped.graph.node}
    # The same amax as the Q/DQ graph (scale * 127) and as ModelOpt's quantizers (what the simulator uses).
    scales = dla_source._constants(qdq.graph)
    activation = [n for n in qdq.graph.node if n.op_type == "QuantizeLinear" and scales[n.input[1]].size == 1]
    assert sorted(ranges.values()) == pytest.approx(sorted({float(scales[n.input[1]]) * 127 for n in activation}), rel=1e-6)
    amaxes = [float(q.amax) for name, q in exported.quantized.named_modules()
              if name.endswith("_quantizer") and getattr(q, "is_enabled", False) and q.amax is not None and q.amax.numel() == 1]
    assert sorted(set(np.round(amaxes, 4))) == sorted(set(np.round(list(ranges.values()), 4)))
    assert ranges["input"] == pytest.approx(float(exported.quantized.conv1.input_quantizer.amax), rel=1e-6)
    # Each block's input carries one range for its conv and its shortcut (equal: the same values calibrated).
    assert conflicts == [] and len(ranges) < len(activation)
    # Without the pairs it is the folded float model again, and the probe's block tensors keep their names.
    images = shapes_images(2, split="val")  # the export's static batch
    expected = exported.folded(images).detach().numpy()
    np.testing.assert_allclose(_run(stripped, images), expected, rtol=1e-4, atol=1e-4)
    assert onnx_block_tensors(stripped.graph, BLOCKS) == onnx_block_tensors(qdq.graph, BLOCKS)


class _Tensor:
    def __init__(self, name: str, refuse: bool = False) -> None:
        self.name, self.refuse, self.dynamic_range = name, refuse, None

    def set_dynamic_range(self, low: float, high: float) -> bool:
        self.dynamic_range = (low, high)
        return not self.refuse


class _Layer:
    def __init__(self, node) -> None:
        self.name, self.outputs = node.name, [_Tensor(name) for name in node.output]
        self.num_outputs = len(self.outputs)

    def get_output(self, slot: int) -> _Tensor:
        return self.outputs[slot]


class _ParsedNetwork:
    """The tensors TensorRT's ONNX parser creates for a graph, named after the ONNX tensors (onnx-tensorrt's
    registerTensor): the inputs, then each node's outputs; the INetworkDefinition calls apply_dynamic_ranges uses."""

    def __init__(self, graph) -> None:
        self.inputs = [_Tensor(value.name) for value in graph.input]
        self.layers = [_Layer(node) for node in graph.node if node.op_type not in ("Constant", "Identity")]
        self.num_inputs, self.num_layers = len(self.inputs), len(self.layers)

    def get_input(self, index: int) -> _Tensor:
        return self.inputs[index]

    def get_layer(self, index: int) -> _Layer:
        return self.layers[index]


def test_every_range_lands_on_the_parsed_network_tensor_of_its_name(exported, tmp_path):
    import onnx

    (tmp_path / dla.ONNX_FILE).write_bytes(exported.qdq_path.read_bytes())
    source = dla_source.prepare(tmp_path / dla.ONNX_FILE, dla.builder_settings("int8", 0, None, "10.3.0"))
    assert source.path.name == "dla-source.float.onnx" and "dynamic ranges" in source.conversion
    network = _ParsedNetwork(onnx.load(str(source.path)).graph)
    assert dla_network.apply_dynamic_ranges(network, source.ranges) == len(source.ranges)
    tensors = dla_network.network_tensors(network)
    for name, amax in source.ranges.items():
        assert tensors[name].dynamic_range == (-amax, amax)
    assert tensors["input"].dynamic_range[1] == pytest.approx(float(exported.quantized.conv1.input_quantizer.amax), rel=1e-6)
    with pytest.raises(CheckFailed, match="no tensor 'renamed'"):
        dla_network.apply_dynamic_ranges(network, {"renamed": 1.0})
    network.inputs[0].refuse = True
    with pytest.raises(CheckFailed, match="refused the dynamic range .* 'input'"):
        dla_network.apply_dynamic_ranges(network, source.ranges)


def test_fp16_and_older_settings_build_the_export_as_it_is(exported):
    for settings in (dla.builder_settings("fp16", 0, None, "10.3.0"), dla.builder_settings("fp16", 0, None, "11.4.1"),
                     {"flags": ["GPU_FALLBACK", "FP16", "INT8"], "DLA_core": 0}):
        source = dla_source.prepare(exported.float_path, settings)
        assert source.path == exported.float_path and source.ranges == {}


def test_an_asymmetric_quantizer_cannot_become_an_implicit_range(exported):
    import onnx

    qdq = onnx.load(str(exported.qdq_path))
    node = next(n for n in qdq.graph.node if n.op_type == "QuantizeLinear")
    zero = next(n for n in qdq.graph.node if n.op_type == "Constant" and n.output[0] == node.input[2])
    zero.attribute[0].t.CopyFrom(onnx.numpy_helper.from_array(np.array(3, dtype=np.int8)))
    with pytest.raises(CheckFailed, match="asymmetric quantizer"):
        dla_source.strip_qdq(qdq)


def test_the_strongly_typed_route_exports_fp16_between_float32_io(exported, monkeypatch, tmp_path):
    import onnx

    monkeypatch.setattr(dla, "installed_route", lambda: dla_routes.STRONGLY_TYPED)
    dla.export_onnx(exported.folded, _config("fp16"), tmp_path / "half.onnx")
    graph = onnx.load(str(tmp_path / "half.onnx")).graph
    assert [v.type.tensor_type.elem_type for v in (*graph.input, *graph.output)] == [onnx.TensorProto.FLOAT] * 2
    weights = {init.name: init.data_type for init in graph.initializer}
    convs = [node for node in graph.node if node.op_type == "Conv"]
    assert len(convs) == 19 and all(weights[node.input[1]] == onnx.TensorProto.FLOAT16 for node in convs)
    monkeypatch.setattr(dla, "installed_route", lambda: dla_routes.WEAKLY_TYPED)
    dla.export_onnx(exported.folded, _config("fp16"), tmp_path / "float.onnx")
    assert {init.data_type for init in onnx.load(str(tmp_path / "float.onnx")).graph.initializer} == {onnx.TensorProto.FLOAT}


# ------------------------------------------------------------------------------ placement


@pytest.mark.parametrize(("fixture", "precision"), [("trt10_dla_int8_resnet20", "int8"), ("trt11_dla_fp16_resnet20", "fp16")])
def test_foreign_nodes_are_mapped_back_to_the_network_layers_they_hold(fixture, precision):
    data = _fixture(fixture)
    assert "NOT captured from a real engine" in data["_note"]
    placement = placement_of(json.dumps(data), data["_network_layers"])
    assert placement["dla_count"] == 2 and placement["undetermined"] == []
    assert "/avgpool/GlobalAveragePool" in placement["gpu"] and "/fc/Gemm" in placement["gpu"]
    assert placement["convolutions"] == {"total": 19, "on_dla": 19, "fraction": 1.0, "not_on_dla": []}
    assert set(placement["precisions"]["dla"]) == {precision}
    check_dla_fraction(placement, 0.9)


def test_a_build_whose_layers_fell_back_fails_naming_them():
    data = _fixture("trt10_dla_partial_fallback_resnet20")
    placement = placement_of(data, data["_network_layers"])
    convolutions = placement["convolutions"]
    assert (convolutions["on_dla"], convolutions["total"]) == (13, 19)
    assert all(name.startswith("/layer3/") for name in convolutions["not_on_dla"]) and len(convolutions["not_on_dla"]) == 6
    # The Myelin ForeignNode is a GPU subgraph, not a DLA one.
    assert any(name.startswith("{ForeignNode[/layer3") for name in placement["gpu"])
    with pytest.raises(CheckFailed, match=r"only 13 of 19 convolutions run on the DLA \(--min-dla-fraction 0.9\); on the GPU: /layer3/layer3.0/conv1/Conv"):
        check_dla_fraction(placement, 0.9)
    check_dla_fraction(placement, 0.6)


def test_a_gpu_engine_never_passes_as_a_dla_one():
    data = _fixture("trt10_dla_int8_resnet20")
    for layer in data["Layers"]:
        if layer["Name"].startswith("{ForeignNode["):
            layer["LayerType"] = "Myelin"
    placement = placement_of(data, data["_network_layers"])
    assert placement["dla_count"] == 0 and placement["convolutions"]["on_dla"] == 0
    with pytest.raises(CheckFailed, match="only 0 of 19"):
        check_dla_fraction(placement, 0.9)
    names_only = {"Layers": [layer["Name"] for layer in _fixture("trt10_dla_int8_resnet20")["Layers"]], "Bindings": []}
    placement = placement_of(names_only, data["_network_layers"])
    assert placement["dla_count"] == 0 and len(placement["undetermined"]) == 2
    with pytest.raises(CheckFailed, match="could not be read"):
        check_dla_fraction(placement_of(None), 0.9)


def test_layer_device_and_constituents_rules():
    assert layer_device({"Name": "{ForeignNode[a...b]}", "LayerType": "DLA"}) == "dla"
    assert layer_device({"Name": "{ForeignNode[a...b]}", "LayerType": "Myelin"}) == "gpu"
    assert layer_device("{ForeignNode[a...b]}") == "undetermined"
    assert layer_device({"Name": "conv + relu", "LayerType": "CaskConvolution", "TacticName": "sm87_xmma"}) == "gpu"
    names = ["a", "b...c", "d", "e"]
    order = {name: index for index, name in enumerate(names)}
    assert constituents("{ForeignNode[b...c...e]}", order, names) == ["b...c", "d", "e"]
    assert constituents("{ForeignNode[d]}", order, names) == ["d"]
    assert constituents("a + d + Reformatting CopyNode", order, names) == ["a", "d"]
    assert constituents("{ForeignNode[x...y]}", order, names) == []


# ------------------------------------------------------------------------------ hardware_compatible


def _function(parameters: set[str]):
    namespace: dict = {}
    exec(f"def f(*, {', '.join(sorted(parameters))}, **kwargs): pass", namespace)
    return namespace["f"]


def test_hardware_compatible_is_refused_where_the_installed_converter_lacks_it():
    trt_2_8 = SimpleNamespace(dynamo=SimpleNamespace(compile=_function(COMPILE_2_8), convert_exported_program_to_serialized_trt_engine=_function(CONVERT_2_8)))
    trt_2_14 = SimpleNamespace(dynamo=SimpleNamespace(compile=_function(COMPILE_2_14), convert_exported_program_to_serialized_trt_engine=_function(CONVERT_2_14)))
    with pytest.raises(UsageError, match=r"torch-tensorrt 2.8.0's convert_exported_program_to_serialized_trt_engine \(model.engine\) has no hardware_compatible.*leave 'engine' out"):
        api.check_hardware_compatible_keywords(True, trt_2_8, ("torchscript", "exported_program", "engine"), "2.8.0")
    api.check_hardware_compatible_keywords(True, trt_2_8, ("torchscript", "exported_program"), "2.8.0")
    api.check_hardware_compatible_keywords(True, trt_2_14, ("engine",), "2.14.0")
    api.check_hardware_compatible_keywords(False, trt_2_8, ("engine",), "2.8.0")


# ------------------------------------------------------------------------------ on a DLA (Jetson AGX Orin / Orin NX)


def _dla_cores() -> int:
    if importlib.util.find_spec("tensorrt") is None or not torch.cuda.is_available():
        return 0
    return dla_core_count() or 0


needs_dla = pytest.mark.skipif("not _dla_cores()", reason="needs TensorRT and a DLA core (Jetson AGX Orin / Orin NX); none here")


@pytest.mark.tensorrt
@needs_dla
@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_the_installed_route_builds_an_engine_whose_convolutions_run_on_the_dla(exported, precision, tmp_path):
    from resnet_edge.backends.tensorrt.runner import EngineRunner

    settings = dla.builder_settings(precision, 0, 512)
    source = exported.qdq_path if precision == "int8" else exported.float_path
    if settings["route"] == dla_routes.STRONGLY_TYPED:
        dla.export_onnx(exported.folded, _config(precision), tmp_path / "half.onnx")
        source = tmp_path / "half.onnx"
    else:
        (tmp_path / source.name).write_bytes(source.read_bytes())
        source = tmp_path / source.name
    built = dla.build(source, settings)
    assert built.applied["flags_applied"] == settings["flags"]
    if precision == "int8":
        assert built.applied["dynamic_ranges"] > 0 and built.applied["range_conflicts"] == []
    placement = dla.checked_placement(built, 0, 0.9)
    assert placement["convolutions"]["fraction"] >= 0.9
    images = shapes_images(2, split="val")
    with EngineRunner(built.plan, dla_core=0) as run:
        logits = run(images.numpy())
    reference = (exported.quantized if precision == "int8" else exported.folded)(images).detach().numpy()
    assert np.abs(logits - reference).max() / np.abs(reference).max() < 0.1
