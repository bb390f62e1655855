"""The TensorRT path's behaviour that the CPU can reproduce:
the batch-pinning retrace of a saved program, the save keywords, the min/opt/max checks, TF32, the
early refusals, the fused-ops requirement, the build-log capture, the raw-engine runner's pure logic,
the engine inspector's placement, the timing cache path. The GPU halves are in test_tensorrt_gpu.py.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch

from helpers.backend_tensorrt_signatures import COMPILE_2_14, CONVERT_2_8, CONVERT_2_14
from resnet_edge.backends import BatchSpec, BuildConfig
from resnet_edge.backends.tensorrt import TensorRTBackend, TensorRTOptions, api, bindings, cudamem
from resnet_edge.backends.tensorrt.backend import needs_fused_ops
from resnet_edge.backends.tensorrt.environment import check_dla_support
from resnet_edge.backends.tensorrt.formats import (
    EXPORTED_PROGRAM_FILE, FORMATS, check_batch_sizes, check_batches, compare_at_each_batch, save_keywords,
)
from resnet_edge.backends.tensorrt.graph import export_program
from resnet_edge.backends.tensorrt.logcapture import TRT_LOG_NAME, capture_tensorrt_log
from resnet_edge.backends.tensorrt.placement import placement_of
from resnet_edge.backends.tensorrt.timing_cache import CACHE_DIR, timing_cache_path
from resnet_edge.core.errors import CheckFailed, UsageError
from resnet_edge.models import create_model


def _signature_function(parameters: set[str]):
    namespace: dict = {}
    exec(f"def f(*, {', '.join(sorted(parameters))}, **kwargs): pass", namespace)
    return namespace["f"]


def _config(**overrides) -> BuildConfig:
    values = dict(arch="resnet20", precision="fp16", target="jetson-orin", input_shape=(3, 32, 32))
    values.update(overrides)
    return BuildConfig(**values)


# ------------------------------------------------------------------ 1. the saved program keeps its batch


@pytest.fixture(scope="module")
def dynamic_program():
    torch.manual_seed(0)
    model = create_model("resnet20").eval()
    return model, export_program(model, torch.randn(8, 3, 32, 32), BatchSpec(1, 8, 16))


def test_a_retrace_without_dynamic_shapes_pins_the_batch(dynamic_program):
    # What torch_tensorrt.save(..., retrace=True) does since 2.10: torch.export.export of the
    # compiled module with the example batch and no dynamic_shapes.
    _, program = dynamic_program
    retraced = torch.export.export(program.module(), (torch.randn(8, 3, 32, 32),), strict=False).module()
    with pytest.raises(Exception, match=r"input.size\(\)\[0\] == 8|Guard failed|Expected input"):
        retraced(torch.randn(5, 3, 32, 32))
    checks = check_batches(program.module(), _config(batch=BatchSpec(1, 8, 16)), torch.randn(8, 3, 32, 32))
    with pytest.raises(CheckFailed, match="fails at batch 1"):
        compare_at_each_batch(retraced, checks, "exported_program module", 1e-3)


def test_the_program_saved_as_compiled_keeps_its_dynamic_batch(dynamic_program, tmp_path):
    # retrace=False serialises the graph as compiled: its symbolic batch survives save and load.
    model, program = dynamic_program
    path = tmp_path / EXPORTED_PROGRAM_FILE
    torch.export.save(program, str(path))
    reloaded = torch.export.load(str(path)).module()
    config = _config(batch=BatchSpec(1, 8, 16))
    checks = check_batches(model, config, torch.randn(8, 3, 32, 32))
    assert sorted(batch.shape[0] for batch, _ in checks) == [1, 8, 16]
    assert compare_at_each_batch(reloaded, checks, "exported_program module", 1e-4) <= 1e-4
    with torch.no_grad():
        assert reloaded(torch.randn(5, 3, 32, 32)).shape == (5, 10)


def test_save_keywords_never_retrace_the_exported_program():
    def save_2_14(module, file_path="", *, output_format="exported_program", arg_inputs=None, retrace=True, **kwargs):
        pass

    example = torch.zeros(8, 3, 32, 32)
    assert save_keywords(save_2_14, "exported_program", example) == {"output_format": "exported_program", "retrace": False}
    torchscript = save_keywords(save_2_14, "torchscript", example)
    assert torchscript["output_format"] == "torchscript" and torchscript["arg_inputs"][0] is example
    assert FORMATS["exported_program"] == "model.pt2"


def test_every_format_is_checked_at_min_opt_and_max():
    assert check_batch_sizes(BatchSpec(1, 8, 16)) == [1, 8, 16]
    assert check_batch_sizes(BatchSpec(1, 1, 64)) == [1, 64]
    assert check_batch_sizes(BatchSpec.fixed(4)) == [4]
    checks = check_batches(lambda x: x.sum((1, 2, 3))[:, None], _config(batch=BatchSpec(1, 2, 4)), torch.ones(2, 3, 32, 32))
    assert [batch.shape[0] for batch, _ in checks] == [2, 1, 4], "the example first, then the other sizes"
    with pytest.raises(CheckFailed, match="at batch 4 .max relative diff"):
        compare_at_each_batch(lambda x: x.sum((1, 2, 3))[:, None] * (1.5 if x.shape[0] == 4 else 1), checks, "engine", 1e-3)


# ------------------------------------------------------------------ 4. FP32 without TF32, --tf32


def test_fp32_disables_tf32_unless_asked():
    for generation in (api.ENABLED_PRECISIONS, api.STRONGLY_TYPED):
        assert api.compile_arguments(generation, "fp32").kwargs["disable_tf32"] is True
        assert api.compile_arguments(generation, "fp32", tf32=True).kwargs["disable_tf32"] is False
        assert "disable_tf32" not in api.compile_arguments(generation, "fp16").kwargs
    assert api.tf32_state("fp32", False) == "disabled" and api.tf32_state("fp32", True) == "allowed"
    assert api.tf32_state("fp16", False) == "n/a"


def test_keywords_a_release_lacks_are_dropped_and_recorded():
    kwargs = api.compile_arguments(api.ENABLED_PRECISIONS, "fp32", hardware_compatible=True, timing_cache_path="/x/c.cache").kwargs
    convert = dict(kwargs)
    dropped = api.drop_optional_keywords(convert, _signature_function(CONVERT_2_8))
    assert dropped == ["disable_tf32", "hardware_compatible"]
    api.check_keywords(_signature_function(CONVERT_2_8), convert, "convert")
    api.check_keywords(_signature_function(COMPILE_2_14 | {"enabled_precisions", "use_explicit_typing"}), kwargs, "compile")
    strongly = api.compile_arguments(api.STRONGLY_TYPED, "fp32", hardware_compatible=True, timing_cache_path="/x/c.cache").kwargs
    assert api.drop_optional_keywords(dict(strongly), _signature_function(COMPILE_2_14)) == []
    assert api.drop_optional_keywords(dict(strongly), _signature_function(CONVERT_2_14)) == []
    recorded = api.manifest_arguments(kwargs, dropped)
    assert recorded["timing_cache_path"] == "c.cache" and "disable_tf32" not in recorded
    assert api.tf32_state("fp32", False, dropped) == "allowed"


def test_hardware_compatible_needs_ampere_and_no_dla():
    api.check_hardware_compatible(True, {"compute_capability": "8.7"}, None)
    api.check_hardware_compatible(False, {"compute_capability": "7.2"}, 0)
    with pytest.raises(UsageError, match="Ampere or newer.*7.2"):
        api.check_hardware_compatible(True, {"compute_capability": "7.2"}, None)
    with pytest.raises(UsageError, match="exclude each other"):
        api.check_hardware_compatible(True, {"compute_capability": "8.7"}, 0)


# ------------------------------------------------------------------ 2. and 5. refused before any work


def test_dla_with_a_dynamic_batch_is_refused():
    options = TensorRTOptions(dla_core=0)
    with pytest.raises(UsageError, match="--dla-core needs a static batch.*--batch N"):
        TensorRTBackend().check_options(options, _config(batch=BatchSpec(1, 4, 8), options=options))
    TensorRTBackend().check_options(options, _config(batch=BatchSpec.fixed(4), options=options))
    with pytest.raises(UsageError, match="raw TensorRT engine only"):
        both = TensorRTOptions(dla_core=0, formats=("torchscript", "engine"))
        TensorRTBackend().check_options(both, _config(batch=BatchSpec.fixed(4), options=both))


def test_dla_message_for_tensorrt_11():
    trt11 = api.TrtVersions("2.14.0", "11.1.0", "2.14.1")
    with pytest.raises(UsageError, match=r"11.0-11.3 have no DLA, 11.4.1\+ has it only on Jetson AGX Orin with JetPack 7.2.2\+.*Thor has none"):
        check_dla_support(api.STRONGLY_TYPED, trt11, 0, 0)


def test_a_raw_engine_without_cuda_python_or_pycuda_is_refused_before_the_compile(monkeypatch):
    from resnet_edge.backends.tensorrt import backend as backend_module

    monkeypatch.setattr(backend_module, "available_binding", lambda: None)
    with pytest.raises(UsageError, match="needs cuda-python or pycuda"):
        TensorRTBackend().check_options(TensorRTOptions(), _config())
    TensorRTBackend().check_options(TensorRTOptions(formats=("torchscript",)), _config())


# ------------------------------------------------------------------ 7. fused ops only where PyTorch calls them


def test_fused_ops_are_required_only_by_a_fallback_graph_that_calls_them():
    modules = {"model": "model.ts", "exported_program": "model.pt2", "engine": "model.engine"}
    assert needs_fused_ops([], modules) is False, "every block inside the engine"
    assert needs_fused_ops(["resnet_edge.int8_residual_block.default"], modules) is True
    assert needs_fused_ops(["aten.view.default"], modules) is False
    assert needs_fused_ops(["resnet_edge.basic_block.default"], {"model": "model.engine", "engine": "model.engine"}) is False


# ------------------------------------------------------------------ 8. VERBOSE stays inside the capture


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_verbose_records_stay_inside_the_capture():
    app = _Collect()
    root = logging.getLogger()
    root.addHandler(app)
    logger = logging.getLogger(TRT_LOG_NAME)
    try:
        with capture_tensorrt_log() as capture:
            logger.debug("[GpuLayer] CONVOLUTION: /conv1/Conv")  # TensorRT VERBOSE
            logger.debug("Tactic 0x1234 time 0.1 ms")
            logger.warning("TensorRT warning the app should see")
        assert capture.lines == ["[GpuLayer] CONVOLUTION: /conv1/Conv"]
        assert capture.held_back == 2
        messages = [record.getMessage() for record in app.records if record.name == TRT_LOG_NAME]
        assert messages == ["TensorRT warning the app should see"]
        assert not logger.filters and not logger.handlers
    finally:
        root.removeHandler(app)


# ------------------------------------------------------------------ 9. the raw-engine runner's pure logic


def test_dtype_mapping():
    class FakeEnum:  # what TensorRT's DataType members look like: a .name
        def __init__(self, name):
            self.name = name

    assert bindings.numpy_dtype(FakeEnum("FLOAT")) == np.float32
    assert bindings.numpy_dtype("DataType.HALF") == np.float16
    assert bindings.numpy_dtype("INT8") == np.int8
    with pytest.raises(CheckFailed, match="BF16"):
        bindings.numpy_dtype("BF16")


def test_binding_order_and_the_manifests_names():
    tensors = [("x", True), ("output0", False)]  # torch-tensorrt 2.8-2.13: TensorRT's default-ish names
    assert bindings.split_io(tensors) == ("x", "output0")
    assert bindings.split_io(list(reversed(tensors))) == ("x", "output0")
    assert bindings.split_io(tensors, {"input": "x", "output": "output0"}) == ("x", "output0")
    with pytest.raises(CheckFailed, match="manifest's engine_io records 'input' -> 'logits'"):
        bindings.split_io(tensors, {"input": "input", "output": "logits"})
    with pytest.raises(CheckFailed, match="one input and one output"):
        bindings.split_io([("a", True), ("b", True), ("c", False)])


def test_buffer_sizing_for_static_and_dynamic_batches():
    static = bindings.buffer_plan((4, 3, 32, 32), None, (4, 10), np.float32, np.float16)
    assert (static.min_batch, static.max_batch, static.image_shape) == (4, 4, (3, 32, 32))
    assert static.input_bytes == 4 * 3 * 32 * 32 * 4 and static.output_bytes == 4 * 10 * 2
    dynamic = bindings.buffer_plan((-1, 3, 32, 32), ((1, 3, 32, 32), (8, 3, 32, 32), (64, 3, 32, 32)), (64, 10), np.float32, np.float32)
    assert (dynamic.min_batch, dynamic.max_batch, dynamic.num_classes) == (1, 64, 10)
    assert dynamic.input_bytes == 64 * 3 * 32 * 32 * 4
    assert dynamic.check_batch((5, 3, 32, 32)) is None
    assert "takes 1..64 x 3 x 32 x 32" in dynamic.check_batch((65, 3, 32, 32))
    with pytest.raises(CheckFailed, match="no optimisation profile"):
        bindings.batch_range((-1, 3, 32, 32), None)


def test_cuda_binding_choice():
    assert cudamem.available_binding() in (cudamem.CUDA_PYTHON, cudamem.PYCUDA, None)
    with pytest.raises(UsageError, match="unknown CUDA binding"):
        cudamem.open_binding(0, "cupy")


# ------------------------------------------------------------------ 2. placement from the engine inspector


def test_placement_from_the_engine_inspector():
    detailed = {"Layers": [
        {"Name": "{ForeignNode[/conv1/Conv.../layer3/layer3.2/relu_1]}", "LayerType": "DLA"},
        {"Name": "/avgpool/GlobalAveragePool", "LayerType": "Pooling"},
        {"Name": "/fc/Gemm", "LayerType": "CaskGemmConvolution"},
    ], "Bindings": ["input", "logits"]}
    placement = placement_of(json.dumps(detailed))
    assert placement["dla_count"] == 1 and placement["gpu"] == ["/avgpool/GlobalAveragePool", "/fc/Gemm"]
    assert placement["reported_by"] == "TensorRT engine inspector"
    assert placement_of(json.dumps({"Layers": ["conv1 + relu", "fc"], "Bindings": []}))["gpu_count"] == 2
    assert placement_of("") is None and placement_of(json.dumps({"Layers": []})) is None


# ------------------------------------------------------------------ 10. the timing cache beside the bundle


def test_timing_cache_is_per_target_version_and_gpu_beside_the_bundle(tmp_path):
    path = timing_cache_path(tmp_path / ".r20.staging", "jetson-orin", "10.3.0.30", {"compute_capability": "8.7"})
    assert path.parent == tmp_path.resolve() / CACHE_DIR
    assert path.name == "jetson-orin-trt10.3.0.30-sm8.7.cache"
    other = timing_cache_path(tmp_path / "r20", "datacenter", "11.1.0", {"compute_capability": "9.0"})
    assert other.parent == path.parent and other.name != path.name
