"""The TensorRT backend's CPU-testable parts: version detection, the argument mapping of each
Torch-TensorRT API generation, GPU targets, and every refusal with its message.

The builds themselves need torch-tensorrt and a CUDA GPU: tests/backends/test_tensorrt_gpu.py.
"""

from __future__ import annotations

import json
import logging
from dataclasses import fields

import pytest
import torch
from torch import nn

from helpers.backend_tensorrt_signatures import COMPILE_2_8, COMPILE_2_14, CONVERT_2_8, CONVERT_2_14
from resnet_edge.backends import BatchSpec, BuildConfig
from resnet_edge.backends.common import FloatIO
from resnet_edge.backends.tensorrt import TensorRTBackend, TensorRTOptions, api
from resnet_edge.backends.tensorrt.environment import check_dla_support, require_torch_tensorrt
from resnet_edge.backends.tensorrt.graph import example_batch, export_program
from resnet_edge.backends.tensorrt.int8 import MODELOPT_FILE, save_quantized
from resnet_edge.backends.tensorrt.logcapture import TRT_LOG_NAME, capture_tensorrt_log, layer_placement
from resnet_edge.core import targets
from resnet_edge.core.errors import CheckFailed, UsageError
from resnet_edge.fuse.fold import fold_batchnorm
from resnet_edge.models import create_model
from resnet_edge.quantize import modelopt_ptq

ORIN = {"name": "Orin", "compute_capability": "8.7", "memory_mib": 30000}
XAVIER = {"name": "Xavier", "compute_capability": "7.2", "memory_mib": 15000}
H100 = {"name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0", "memory_mib": 81000}


def _signature_function(parameters: set[str]):
    """A function whose named parameters are ``parameters`` (for check_keywords)."""
    namespace: dict = {}
    exec(f"def f(*, {', '.join(sorted(parameters))}, **kwargs): pass", namespace)
    return namespace["f"]


# ------------------------------------------------------------------------------ version detection


@pytest.mark.parametrize(
    ("text", "parsed"),
    [("2.14.0", (2, 14, 0)), ("2.14.0+cu130", (2, 14, 0)), ("2.8.0a0+gitabc", (2, 8, 0)), ("10.3.0.30", (10, 3, 0, 30)), ("11.1.0rc1", (11, 1, 0)), (None, None), ("", None), ("dev", None)],
)
def test_parse_version(text, parsed):
    assert api.parse_version(text) == parsed


@pytest.mark.parametrize(
    ("version", "generation"),
    [("2.8.0", "enabled_precisions"), ("2.9.0", "enabled_precisions"), ("2.12.0", "enabled_precisions"), ("2.13.0", "strongly_typed"), ("2.14.0+cu130", "strongly_typed"), ("3.0.0", "strongly_typed")],
)
def test_api_generation_by_version(version, generation):
    assert api.api_generation(version) == generation


def test_missing_or_old_torch_tensorrt_is_refused_with_what_to_install():
    with pytest.raises(UsageError, match=r"torch-tensorrt is not installed.*pip install torch-tensorrt==2.14.0.*jetson-ai-lab"):
        api.api_generation(None)
    with pytest.raises(UsageError, match="torch-tensorrt 2.4.0 is older than 2.8"):
        api.api_generation("2.4.0")


def test_the_signature_decides_the_generation():
    assert api.generation_of_signature(COMPILE_2_8) == api.ENABLED_PRECISIONS
    assert api.generation_of_signature(COMPILE_2_14) == api.STRONGLY_TYPED


def test_detect_versions_reads_package_metadata():
    from resnet_edge.core import hostinfo

    versions = api.detect_versions()
    assert versions.torch == torch.__version__
    assert versions.torch_tensorrt == hostinfo.package_version("torch_tensorrt")
    assert versions.tensorrt == hostinfo.package_version("tensorrt")


def test_require_torch_tensorrt_checks_the_installed_pair():
    assert require_torch_tensorrt(api.TrtVersions("2.14.0", "11.1.0", "2.14.1+cu130")) == api.STRONGLY_TYPED
    assert require_torch_tensorrt(api.TrtVersions("2.8.0", "10.3.0", "2.8.0")) == api.ENABLED_PRECISIONS
    with pytest.raises(UsageError, match="torch-tensorrt is not installed"):
        require_torch_tensorrt(api.TrtVersions(None, None, "2.14.1"))
    with pytest.raises(UsageError, match=r"torch-tensorrt 2.8.0 needs torch 2.8.x but torch 2.14.1 is installed"):
        require_torch_tensorrt(api.TrtVersions("2.8.0", "10.3.0", "2.14.1"))
    with pytest.raises(UsageError, match="TensorRT's Python package is not"):
        require_torch_tensorrt(api.TrtVersions("2.14.0", None, "2.14.1"))


# ------------------------------------------------------------------------------ argument mapping


@pytest.mark.parametrize(
    ("precision", "precisions"),
    [("fp32", {torch.float32}), ("fp16", {torch.float32, torch.float16}), ("int8", {torch.float32, torch.float16, torch.int8})],
)
def test_enabled_precisions_generation(precision, precisions):
    arguments = api.compile_arguments(api.ENABLED_PRECISIONS, precision, workspace_mb=1024)
    assert arguments.kwargs["enabled_precisions"] == precisions
    assert arguments.kwargs["use_explicit_typing"] is False
    assert arguments.kwargs["workspace_size"] == 1024 << 20
    assert arguments.device == ("cuda:0", {})
    # disable_tf32 (FP32) is dropped, and recorded, where a release lacks it (api.drop_optional_keywords)
    required = set(arguments.kwargs) - set(api.OPTIONAL_KEYWORDS)
    assert required <= COMPILE_2_8 and required <= CONVERT_2_8
    api.check_keywords(_signature_function(COMPILE_2_8), {k: v for k, v in arguments.kwargs.items() if k in required}, "compile")
    assert api.precision_plan(api.ENABLED_PRECISIONS, precision).graph_dtype == torch.float32


@pytest.mark.parametrize(("precision", "dtype"), [("fp32", torch.float32), ("fp16", torch.float16), ("int8", torch.float32)])
def test_strongly_typed_generation_has_no_enabled_precisions(precision, dtype):
    arguments = api.compile_arguments(api.STRONGLY_TYPED, precision)
    assert "enabled_precisions" not in arguments.kwargs and "use_explicit_typing" not in arguments.kwargs
    assert "workspace_size" not in arguments.kwargs, "no --workspace-mb: TensorRT's default"
    assert set(arguments.kwargs) <= COMPILE_2_14 and set(arguments.kwargs) <= CONVERT_2_14
    api.check_keywords(_signature_function(COMPILE_2_14), arguments.kwargs, "compile")
    plan = api.precision_plan(api.STRONGLY_TYPED, precision)
    assert plan.graph_dtype == dtype and plan.enabled_precisions is None
    assert plan.to_manifest()["api"] == "strongly_typed"


def test_enabled_precisions_would_be_rejected_by_the_2_14_signature():
    old = api.compile_arguments(api.ENABLED_PRECISIONS, "fp16").kwargs
    with pytest.raises(UsageError, match="does not take enabled_precisions, use_explicit_typing"):
        api.check_keywords(_signature_function(COMPILE_2_14), old, "torch_tensorrt.dynamo.compile")


def test_dla_device_and_its_refusals():
    arguments = api.compile_arguments(api.ENABLED_PRECISIONS, "int8", dla_core=1)
    assert arguments.device == ("dla:1", {"allow_gpu_fallback": True})
    with pytest.raises(UsageError, match="DLA runs FP16 and INT8 layers only"):
        api.compile_arguments(api.ENABLED_PRECISIONS, "fp32", dla_core=0)
    assert any("TensorRT 11" in note for note in api.compile_arguments(api.STRONGLY_TYPED, "fp16", dla_core=0).notes)


def test_bad_builder_settings_are_refused():
    with pytest.raises(UsageError, match="--workspace-mb must be at least 1"):
        api.compile_arguments(api.STRONGLY_TYPED, "fp32", workspace_mb=0)
    with pytest.raises(UsageError, match="optimization level is 0..5"):
        api.compile_arguments(api.STRONGLY_TYPED, "fp32", optimization_level=9)
    with pytest.raises(UsageError, match="builds fp32, fp16 or int8"):
        api.compile_arguments(api.STRONGLY_TYPED, "int4")


def test_precision_plans_serialise_for_the_manifest():
    text = json.dumps(api.precision_plan(api.ENABLED_PRECISIONS, "int8").to_manifest())
    assert json.loads(text)["enabled_precisions"] == ["float16", "float32", "int8"]


# ------------------------------------------------------------------------------ targets


def test_target_defaults():
    orin, xavier, dc = (targets.get_target(name) for name in ("jetson-orin", "jetson-xavier", "datacenter"))
    assert orin.compute_capabilities == ("8.7",) and orin.dla_cores == 2 and orin.workspace_mb == 1024
    assert xavier.compute_capabilities == ("7.2",) and xavier.workspace_mb == 512
    assert dc.compute_capabilities is None and dc.dla_cores == 0 and dc.workspace_mb is None
    assert orin.is_jetson and not dc.is_jetson
    assert orin.to_manifest()["compute_capabilities"] == ["8.7"]


def test_cpu_and_unknown_targets_are_refused():
    with pytest.raises(UsageError, match="--target cpu is not a GPU target.*onnxruntime and torchscript"):
        targets.get_target("cpu")
    with pytest.raises(UsageError, match="choose one of: jetson-orin, jetson-xavier, datacenter"):
        targets.get_target("jetson-nano")


def test_target_for_gpu():
    assert targets.target_for_gpu(ORIN) == "jetson-orin"
    assert targets.target_for_gpu(XAVIER) == "jetson-xavier"
    assert targets.target_for_gpu(H100) == "datacenter"
    assert targets.target_for_gpu({"name": "Thor", "compute_capability": "11.0"}) is None
    assert targets.target_for_gpu(None) is None


def test_building_without_a_gpu_is_refused_with_the_reason():
    with pytest.raises(UsageError, match="no CUDA GPU is visible here; TensorRT engines are built on the device that runs them"):
        targets.check_gpu(targets.get_target("jetson-orin"), None)


def test_building_for_another_gpu_is_refused_with_the_right_target_named():
    with pytest.raises(UsageError, match=r"compute capability 8.7.*NVIDIA H100 80GB HBM3 \(compute capability 9.0\); this GPU is a --target datacenter.*build on the jetson-orin itself"):
        targets.check_gpu(targets.get_target("jetson-orin"), H100)
    with pytest.raises(UsageError, match="a discrete \\(non-Jetson\\) GPU.*this GPU is a --target jetson-orin"):
        targets.check_gpu(targets.get_target("datacenter"), ORIN)
    with pytest.raises(UsageError, match="this GPU is a --target jetson-orin"):
        targets.check_gpu(targets.get_target("jetson-xavier"), ORIN)
    targets.check_gpu(targets.get_target("jetson-orin"), ORIN)
    targets.check_gpu(targets.get_target("datacenter"), H100)


def test_dla_requests_are_checked_against_target_precision_and_device():
    orin, dc = targets.get_target("jetson-orin"), targets.get_target("datacenter")
    targets.check_dla(orin, None, "fp32", None)
    targets.check_dla(orin, 1, "int8", 2)
    with pytest.raises(UsageError, match="datacenter GPUs have no DLA"):
        targets.check_dla(dc, 0, "fp16", None)
    with pytest.raises(UsageError, match="needs --fp16 or --int8"):
        targets.check_dla(orin, 0, "fp32", 2)
    with pytest.raises(UsageError, match="TensorRT reports no DLA cores on this device"):
        targets.check_dla(orin, 0, "fp16", 0)
    with pytest.raises(UsageError, match="--dla-core 2: TensorRT reports 2 DLA cores"):
        targets.check_dla(orin, 2, "fp16", 2)


def test_dla_on_tensorrt_11_needs_a_jetpack_that_has_it():
    trt11 = api.TrtVersions("2.14.0", "11.1.0", "2.14.1")
    with pytest.raises(UsageError, match=r"no DLA in this TensorRT \(11.1.0\).*torch-tensorrt 2.8 with TensorRT 10.3"):
        check_dla_support(api.STRONGLY_TYPED, trt11, 0, 0)
    with pytest.raises(UsageError, match="no DLA in this TensorRT"):  # decided by the version, not the core count
        check_dla_support(api.STRONGLY_TYPED, trt11, 0, 2)
    check_dla_support(api.STRONGLY_TYPED, api.TrtVersions("2.14.0", "11.4.1.2", "2.14.1"), 0, 2)
    check_dla_support(api.ENABLED_PRECISIONS, api.TrtVersions("2.8.0", "10.3.0", "2.8.0"), 0, None)
    check_dla_support(api.STRONGLY_TYPED, trt11, None, 0)


# ------------------------------------------------------------------------------ the backend on this host


def _config(**overrides) -> BuildConfig:
    values = dict(arch="resnet20", precision="fp16", target="jetson-orin", input_shape=(3, 32, 32))
    values.update(overrides)
    return BuildConfig(**values)


def test_backend_declares_its_contract():
    backend = TensorRTBackend()
    assert backend.name == "tensorrt"
    assert backend.precisions == ("fp32", "fp16", "int8")
    assert set(backend.targets) == {"jetson-orin", "jetson-xavier", "datacenter"}
    assert backend.display_name == "TensorRT" and backend.options_type is TensorRTOptions
    assert {"workspace_mb", "dla_core", "formats", "optimization_level", "tf32", "hardware_compatible", "min_dla_fraction"} == {f.name for f in fields(TensorRTOptions)}
    assert backend.can_fuse and not backend.default_fused()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusals of a host without a CUDA GPU")
def test_available_says_why_not_on_a_cpu_host():
    ok, reason = TensorRTBackend().available()
    assert not ok
    assert reason.startswith("no CUDA GPU is visible; TensorRT engines are built on, and run on, the GPU of the target device")


def test_registered_and_chosen_through_the_registry():
    from resnet_edge.backends import get_backend, list_backends, resolve_backend

    def no_cpu_config():
        raise AssertionError("a GPU target never measures the CPU runtimes")

    assert "tensorrt" in list_backends()
    assert isinstance(get_backend("tensorrt"), TensorRTBackend)
    if TensorRTBackend().available()[0]:
        assert resolve_backend("auto", "datacenter", no_cpu_config).backend.name == "tensorrt"
        return
    with pytest.raises(UsageError, match="the tensorrt backend is not usable here: "):
        resolve_backend("tensorrt", None, no_cpu_config)
    backend, why, measured_cpu = resolve_backend("auto", "datacenter", no_cpu_config)
    assert backend.name != "tensorrt" and "tensorrt not usable" in why and not measured_cpu


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusals of a host without a CUDA GPU")
@pytest.mark.parametrize("target", ["jetson-orin", "jetson-xavier", "datacenter"])
def test_check_config_without_a_gpu_refuses_before_any_work(target):
    with pytest.raises(UsageError, match=f"--target {target} needs its GPU .* no CUDA GPU is visible here"):
        TensorRTBackend().check_config(_config(target=target))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"target": "cpu"}, "--target cpu is not a GPU target"),
        ({"precision": "int4"}, "builds fp32, fp16 or int8, not int4"),
    ],
)
def test_check_config_refuses_what_no_host_can_build(overrides, message):
    with pytest.raises(UsageError, match=message):
        TensorRTBackend().check_config(_config(**overrides))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusals of a host without a CUDA GPU")
def test_loading_a_tensorrt_bundle_without_a_gpu_is_refused(tmp_path):
    with pytest.raises(CheckFailed, match="needs a CUDA GPU; none is visible"):
        TensorRTBackend().load(tmp_path, {"artifacts": {"model": "model.ts"}}, "auto")
    with pytest.raises(CheckFailed, match="runs on a CUDA GPU only, not on cpu"):
        TensorRTBackend().load(tmp_path, {"artifacts": {"model": "model.ts"}}, "cpu")


def test_bundle_from_other_versions_is_refused(tmp_path):
    manifest = {"tensorrt": {"versions": {"torch_tensorrt": "0.0.1", "tensorrt": "1.0"}}}
    installed = api.detect_versions().torch_tensorrt or "none"
    with pytest.raises(CheckFailed, match=f"built with torch-tensorrt 0.0.1 and this host has {installed}.*rebuild it here"):
        TensorRTBackend().check_versions(tmp_path, manifest)
    TensorRTBackend().check_versions(tmp_path, {"tensorrt": {"versions": {}}})


# ------------------------------------------------------------------------------ graph preparation


def test_float_io_wrapper_keeps_float32_at_the_edges():
    inner = nn.Linear(4, 3).to(torch.bfloat16)  # bfloat16 runs on any CPU; the GPU build uses float16
    wrapped = FloatIO(inner, torch.bfloat16)
    out = wrapped(torch.randn(2, 4))
    assert out.dtype == torch.float32


def test_example_batch_for_static_and_dynamic_batches():
    assert example_batch(BatchSpec(1, 1, 1)) == 1
    assert example_batch(BatchSpec(8, 8, 8)) == 8
    assert example_batch(BatchSpec(1, 1, 32)) == 2, "a dynamic batch is exported with at least 2"
    assert example_batch(BatchSpec(1, 4, 16)) == 4


def test_export_with_a_dynamic_batch_runs_every_size_in_range():
    model = create_model("resnet20").eval()
    program = export_program(model, torch.randn(2, 3, 32, 32), BatchSpec(1, 2, 8))
    module = program.module()
    for size in (1, 5, 8):
        images = torch.randn(size, 3, 32, 32)
        with torch.no_grad():
            torch.testing.assert_close(module(images), model(images), rtol=1e-4, atol=1e-4)


def test_layer_placement_parses_tensorrts_report():
    lines = [
        "---------- Layers Running on DLA ----------",
        "[DlaLayer] {ForeignNode[/conv1/Conv.../layer4/layer4.1/relu_1]}",
        "---------- Layers Running on GPU ----------",
        "[GpuLayer] POOLING: /avgpool/GlobalAveragePool\n[GpuLayer] CONVOLUTION: /fc/Gemm",
    ]
    placement = layer_placement(lines)
    assert placement["dla_count"] == 1 and placement["gpu_count"] == 2
    assert placement["gpu"][1] == "CONVOLUTION: /fc/Gemm"
    assert layer_placement(["Total Activation Memory: 123"]) is None


def test_int8_simulator_restores_the_calibrated_model_on_the_cpu(tmp_path):
    # What build() saves for INT8 (modelopt.torch.opt.save of the BN-folded, calibrated model) and
    # what simulator() restores: the engine's exact scales, run as fake quantization on the CPU.
    pytest.importorskip("modelopt.torch.quantization", reason="nvidia-modelopt is not installed")

    torch.manual_seed(0)
    model = create_model("resnet20").eval()
    quantized = modelopt_ptq.calibrate(fold_batchnorm(model), [torch.randn(16, 3, 32, 32)], modelopt_ptq.PTQConfig(keep_fp=("fc",)))
    save_quantized(quantized, tmp_path / MODELOPT_FILE)
    manifest = {"arch": "resnet20", "num_classes": 10, "shortcut": "A", "precision": "int8", "artifacts": {"quantized_model": MODELOPT_FILE}}
    simulate = TensorRTBackend().simulator(tmp_path, manifest)
    images = torch.randn(6, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(simulate(images), quantized(images), rtol=0, atol=0)
    restored = simulate.module
    assert modelopt_ptq.higher_precision_layers(restored) == ["fc"], "switched-off layers stay off"
    assert "layer2.0" in modelopt_ptq.quantized_layers(restored), "the residual quantizers come back"
    assert TensorRTBackend().simulator(tmp_path, {**manifest, "precision": "fp16"}) is None


def test_tensorrt_log_capture_keeps_only_the_placement_report():
    logger = logging.getLogger(TRT_LOG_NAME)
    before = logger.level
    with capture_tensorrt_log() as log:
        logger.debug("[GpuLayer] CONVOLUTION: /conv1/Conv")
        logger.info("Total Activation Memory: 1234")
        logger.info("---------- Layers Running on DLA ----------")
    assert log.lines == ["[GpuLayer] CONVOLUTION: /conv1/Conv", "---------- Layers Running on DLA ----------"]
    assert logger.level == before and not logger.handlers
