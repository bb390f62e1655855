"""The CPU-testable parts of TensorRT's block probe (``resnet_edge.backends.tensorrt.probe``): the wrapper
whose outputs Torch-TensorRT marks, the ONNX tensors the DLA path marks, the recorded compile arguments,
the INT8 simulator's probe, the raw-engine runner's extra outputs, and the refusals without a GPU.

The probe engines themselves need torch-tensorrt and a GPU: tests/pipelines/test_diagnose_tensorrt.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers.calibration import shapes_images
from resnet_edge.backends import BatchSpec, BuildConfig
from resnet_edge.backends.blocks import module_probe
from resnet_edge.backends.onnx_graph import onnx_block_tensors
from resnet_edge.backends.tensorrt import TensorRTBackend, api, bindings, dla
from resnet_edge.backends.tensorrt.graph import export_program
from resnet_edge.backends.tensorrt.probe import BlockOutputs, probe_config, reading, recorded_arguments, source_model
from resnet_edge.core.errors import CheckFailed
from resnet_edge.fuse.fold import fold_batchnorm
from resnet_edge.models import block_names, create_model

BLOCKS = [f"layer{s}.{b}" for s in (1, 2, 3) for b in range(3)]


@pytest.fixture(scope="module")
def resnet20() -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("resnet20").eval()


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return shapes_images(6, split="val")


def _assert_blocks_equal(outputs: dict, expected: dict, atol: float = 1e-4) -> None:
    assert list(outputs) == list(expected) == BLOCKS
    for block in BLOCKS:
        torch.testing.assert_close(outputs[block], expected[block], rtol=1e-4, atol=atol)


def test_wrapper_returns_logits_and_the_block_outputs_the_hooks_see(resnet20, images):
    assert block_names(resnet20) == BLOCKS
    wrapper = BlockOutputs(fold_batchnorm(resnet20), BLOCKS).eval()
    with torch.no_grad():
        logits, *values = wrapper(images)
        expected_logits = resnet20(images)
    torch.testing.assert_close(logits, expected_logits, rtol=1e-4, atol=1e-4)
    _assert_blocks_equal(dict(zip(BLOCKS, values)), module_probe(resnet20, BLOCKS)(images))


def test_wrapper_exports_with_every_block_output_as_a_graph_output(resnet20, images):
    """Non-strict ``torch.export`` (as the build exports) runs the hooks while tracing: the program returns
    the logits and all nine block outputs, at any batch of the dynamic range."""
    program = export_program(BlockOutputs(fold_batchnorm(resnet20), BLOCKS).eval(), images[:4], BatchSpec(1, 4, 16))
    assert len(program.graph_signature.output_specs) == 1 + len(BLOCKS)
    with torch.no_grad():
        logits, *values = program.module()(images)
    assert logits.shape == (6, 10)
    _assert_blocks_equal(dict(zip(BLOCKS, values)), module_probe(resnet20, BLOCKS)(images))


def _config(precision: str) -> BuildConfig:
    return BuildConfig(arch="resnet20", precision=precision, target="jetson-orin", input_shape=(3, 32, 32), batch=BatchSpec.fixed(6))


def _run_with_outputs(path, names: list[str], images: torch.Tensor) -> list[np.ndarray]:
    """The ONNX model at ``path`` run by ONNX Runtime with ``names`` added as graph outputs (as the DLA
    path marks them as engine outputs)."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(path))
    model.graph.output.extend(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None) for name in names)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(names, {"input": images.numpy()})


@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_dla_export_names_the_block_outputs(resnet20, images, precision, tmp_path):
    """The tensors the DLA probe marks (``onnx_block_tensors`` on ``dla.export_onnx``'s graph, the names
    TensorRT's parser keeps) are the blocks' outputs: float, before any QuantizeLinear."""
    import onnx

    model = fold_batchnorm(resnet20)
    if precision == "int8":
        from resnet_edge.quantize import modelopt_ptq

        pytest.importorskip("modelopt.torch.quantization", reason="nvidia-modelopt is not installed")
        model = modelopt_ptq.calibrate(model, [shapes_images(32)], modelopt_ptq.PTQConfig())
    dla.export_onnx(model, _config(precision), tmp_path / dla.ONNX_FILE)
    graph = onnx.load(str(tmp_path / dla.ONNX_FILE)).graph
    names = onnx_block_tensors(graph, BLOCKS)
    producers = {out: node for node in graph.node for out in node.output}
    assert all(producers[names[block]].op_type == "Relu" for block in BLOCKS)
    values = _run_with_outputs(tmp_path / dla.ONNX_FILE, [names[block] for block in BLOCKS], images)
    expected = module_probe(model, BLOCKS)(images)
    if precision == "fp16":
        _assert_blocks_equal({b: torch.from_numpy(v) for b, v in zip(BLOCKS, values)}, expected)
        return
    # ONNX Runtime's Q/DQ arithmetic vs ModelOpt's fake quantization: the same ranges, a few values one
    # quantization step apart (rounding), so the whole tensors are compared.
    for block, value in zip(BLOCKS, values):
        error = (torch.from_numpy(value) - expected[block]).norm() / expected[block].norm()
        assert error < 0.03, (block, float(error))


@pytest.mark.parametrize("generation", [api.ENABLED_PRECISIONS, api.STRONGLY_TYPED])
@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_recorded_compile_arguments_come_back_as_the_build_passed_them(generation, precision, tmp_path):
    cache = tmp_path.resolve() / ".tensorrt-timing-cache" / "datacenter-trt11-sm9.0.cache"
    built = api.compile_arguments(generation, precision, workspace_mb=512, optimization_level=3, timing_cache_path=str(cache))
    section = {"compile_arguments": api.manifest_arguments(built.kwargs), "timing_cache": cache.name}
    assert recorded_arguments(section, tmp_path / "bundle") == built.kwargs


def test_simulated_probe_reads_the_bundles_modelopt_model_on_the_cpu(tmp_path, images):
    pytest.importorskip("modelopt.torch.quantization", reason="nvidia-modelopt is not installed")
    from helpers.tensorrt_bundles import tensorrt_int8_bundle

    bundle, manifest, quantized = tensorrt_int8_bundle(tmp_path / "b")
    probe = TensorRTBackend().block_probe(bundle, manifest, BLOCKS, device="cpu", simulated=True)
    _assert_blocks_equal(probe(images), module_probe(quantized, BLOCKS)(images), atol=0)
    restored = source_model(bundle, manifest, reference=None)  # the INT8 probe engine's source: the same model
    with torch.no_grad():
        torch.testing.assert_close(restored(images), quantized(images), rtol=0, atol=0)
    assert TensorRTBackend().block_probe(bundle, {**manifest, "precision": "fp16"}, BLOCKS, device="cpu", simulated=True) is None


def test_probe_config_and_reading_follow_the_manifest():
    from helpers.tensorrt_bundles import tensorrt_int8_manifest

    manifest = tensorrt_int8_manifest()
    config = probe_config(manifest)
    assert (config.input_shape, config.batch, config.input_name, config.output_name) == ((3, 32, 32), BatchSpec.fixed(8), "input", "logits")
    text = reading(manifest, BLOCKS)
    assert "modelopt_int8.pth" in text and "9 block outputs marked as engine outputs" in text and "compile_arguments" in text
    dla_text = reading({**manifest, "precision": "fp16", "tensorrt": {**manifest["tensorrt"], "dla": {"core": 0}}}, BLOCKS)
    assert "FP32 reference" in dla_text and "TensorRT's builder" in dla_text


def test_artifact_probe_without_a_gpu_refuses_as_load_does(tmp_path):
    from helpers.tensorrt_bundles import tensorrt_int8_manifest

    if torch.cuda.is_available():
        pytest.skip("this host has a GPU")
    manifest = tensorrt_int8_manifest()
    backend = TensorRTBackend()
    with pytest.raises(CheckFailed) as probed:
        backend.block_probe(tmp_path, manifest, BLOCKS)
    with pytest.raises(CheckFailed) as loaded:
        backend.load(tmp_path, manifest)
    assert str(probed.value) == str(loaded.value) and "needs a CUDA GPU" in str(probed.value)
    with pytest.raises(CheckFailed, match="not on cpu"):
        backend.block_probe(tmp_path, manifest, BLOCKS, device="cpu")


def test_float_probe_needs_the_reference():
    from helpers.tensorrt_bundles import tensorrt_int8_manifest

    with pytest.raises(CheckFailed, match="needs the FP32 reference"):
        source_model("unused", {**tensorrt_int8_manifest(), "precision": "fp16"}, reference=None)


def test_engine_io_with_marked_block_outputs():
    tensors = [("input", True), ("logits", False), ("b1", False), ("b2", False)]
    assert bindings.split_io(tensors, {"input": "input", "output": "logits"}, extra_outputs=("b1", "b2")) == ("input", "logits")
    with pytest.raises(CheckFailed, match="one input and one output"):
        bindings.split_io(tensors)  # the saved engine's reader refuses an engine with more outputs
    with pytest.raises(CheckFailed, match="lacks the marked output"):
        bindings.split_io(tensors[:3], extra_outputs=("b1", "b2"))
