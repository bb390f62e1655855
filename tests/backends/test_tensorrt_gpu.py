"""TensorRT builds on a real GPU: FP32/FP16/INT8 compile, save/load of each format, the raw-engine
runner, the manifest and its version checks. Skipped, with the reason, where torch-tensorrt or a
CUDA GPU is missing (this repository's CI runs on CPUs; see docs/datacenter.md and docs/jetson.md).
"""

from __future__ import annotations

import importlib.util

import pytest
import torch

from resnet_edge.core import hostinfo, targets
from resnet_edge.backends import BatchSpec, BuildConfig, CalibrationData, Predictor
from resnet_edge.backends.tensorrt import TensorRTBackend, TensorRTOptions
from resnet_edge.backends.tensorrt.environment import dla_core_count
from resnet_edge.backends.tensorrt.runner import EngineRunner
from resnet_edge.core.errors import CheckFailed, UsageError
from resnet_edge.models import create_model


def _why_not() -> str | None:
    if not torch.cuda.is_available():
        return "no CUDA GPU is visible"
    if importlib.util.find_spec("torch_tensorrt") is None:
        return "torch-tensorrt is not installed"
    try:
        import torch_tensorrt  # noqa: F401
    except Exception as error:  # a broken TensorRT install
        return f"torch-tensorrt cannot be imported: {error}"
    return None


REASON = _why_not()
pytestmark = [pytest.mark.tensorrt, pytest.mark.skipif(REASON is not None, reason=f"needs torch-tensorrt and a CUDA GPU: {REASON}")]

TOLERANCE = {"fp32": 1e-3, "fp16": 2e-2}


@pytest.fixture(scope="module")
def backend():
    return TensorRTBackend()


@pytest.fixture(scope="module")
def target() -> str:
    name = targets.target_for_gpu(hostinfo.gpu_info())
    if name is None:
        pytest.skip("this GPU matches no resnet-edge target")
    return name


@pytest.fixture(scope="module")
def reference():
    torch.manual_seed(0)
    return create_model("resnet20").eval()


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    from resnet_edge.data import ShapesDataset, eval_transform, get_preset

    dataset = ShapesDataset(128, split="val", transform=eval_transform(get_preset("cifar")))
    return torch.stack([dataset[i][0] for i in range(len(dataset))])


def _config(target: str, precision: str, images: torch.Tensor | None = None, **overrides) -> BuildConfig:
    options = TensorRTOptions(**{key: overrides.pop(key) for key in ("dla_core", "formats") if key in overrides})
    values = dict(arch="resnet20", precision=precision, target=target, input_shape=(3, 32, 32), batch=BatchSpec(1, 8, 16), device="cuda", options=options)
    if precision == "int8":
        batches = list(images.split(32))
        values["calibration"] = CalibrationData("max", lambda: iter(batches), len(images))
    values.update(overrides)
    return BuildConfig(**values)


@pytest.fixture(scope="module")
def built(backend, target, reference, images, tmp_path_factory):
    """One bundle directory per precision: (out_dir, BuildResult, manifest-like dict)."""
    results = {}
    for precision in ("fp32", "fp16", "int8"):
        if precision == "int8" and importlib.util.find_spec("modelopt") is None:
            continue
        out = tmp_path_factory.mktemp(f"trt-{precision}")
        config = _config(target, precision, images)
        backend.check_config(config)
        result = backend.build(reference, config, out)
        manifest = {
            "arch": "resnet20", "num_classes": 10, "shortcut": "A", "precision": precision, "target": target,
            "artifacts": result.artifacts, "input": {"batch": config.batch.to_dict()}, **result.manifest,
        }
        results[precision] = (out, result, manifest)
    return results


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_float_builds_match_pytorch(backend, built, reference, images, precision):
    out, result, manifest = built[precision]
    assert result.artifacts["model"] == "model.ts"
    assert {"exported_program", "engine"} <= set(result.artifacts)
    predict = backend.load(out, manifest, "auto")
    assert isinstance(predict, Predictor) and predict.device.type == "cuda" and predict.module is not None
    with torch.no_grad():
        expected = reference(images[:16])
    assert _relative(predict(images[:16]), expected) < TOLERANCE[precision]


def test_int8_build_tracks_fp32_and_its_simulator(backend, built, reference, images):
    if "int8" not in built:
        pytest.skip("nvidia-modelopt is not installed")
    out, result, manifest = built["int8"]
    predict = backend.load(out, manifest, "auto")
    simulate = backend.simulator(out, manifest)
    assert simulate.device == torch.device("cpu") and simulate.module is not None
    logits = predict(images[:16])
    with torch.no_grad():
        expected = reference(images[:16])
    simulated = simulate(images[:16])
    assert (logits.argmax(1) == expected.argmax(1)).float().mean() >= 0.85
    assert (logits.argmax(1) == simulated.argmax(1)).float().mean() >= 0.9, "the engine computes what the fake-quant model does"
    quantization = result.manifest["quantization"]
    assert quantization["tool"] == "modelopt" and quantization["format"] == "QDQ" and quantization["residual_qdq"]


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_each_saved_format_loads_and_agrees(built, images, precision):
    if precision not in built:
        pytest.skip("nvidia-modelopt is not installed")
    import torch_tensorrt

    out, result, _ = built[precision]
    batch = images[:5].cuda()
    ts = torch.jit.load(str(out / result.artifacts["model"]), map_location="cuda").eval()
    ep = torch_tensorrt.load(str(out / result.artifacts["exported_program"])).module()
    with torch.no_grad():
        from_ts, from_ep = ts(batch).float().cpu(), ep(batch).float().cpu()
    torch.testing.assert_close(from_ts, from_ep, rtol=1e-3, atol=1e-3)
    with EngineRunner(out / result.artifacts["engine"]) as runner:
        from_engine = torch.from_numpy(runner(images[:5].numpy()))
        assert runner.min_batch == 1 and runner.max_batch == 16, "the optimisation profile is --dynamic-batch 1:8:16"
        for size in (1, 16):
            assert runner(images[:size].numpy()).shape == (size, 10)
        with pytest.raises(UsageError, match="takes 1..16"):
            runner(images[:17].numpy())
    assert _relative(from_engine, from_ep) < (1e-3 if precision == "fp32" else 0.05)


def test_manifest_records_versions_api_target_and_requirements(built, target):
    out, result, manifest = built["fp32"]
    section = result.manifest["tensorrt"]
    versions = section["versions"]
    assert versions["torch_tensorrt"] == hostinfo.package_version("torch_tensorrt")
    assert versions["tensorrt"] == hostinfo.package_version("tensorrt")
    assert versions["api"] in ("enabled_precisions", "strongly_typed")
    assert section["target"]["name"] == target
    assert section["engines"] >= 1 and isinstance(section["pytorch_ops"], list)
    assert section["engine_io"]["input_dtype"] == "float32" and section["engine_io"]["output_dtype"] == "float32"
    gpu = hostinfo.gpu_info()
    assert result.manifest["requires"] == {
        "device": "cuda",
        "gpu": {"name": gpu["name"], "compute_capability": gpu["compute_capability"]},
        "tensorrt": versions["tensorrt"],
        "fused_ops": False,
    }


def test_load_refuses_a_bundle_from_other_versions(backend, built):
    out, _, manifest = built["fp32"]
    stale = {**manifest, "tensorrt": {**manifest["tensorrt"], "versions": {**manifest["tensorrt"]["versions"], "torch_tensorrt": "2.8.0"}}}
    with pytest.raises(CheckFailed, match="built with torch-tensorrt 2.8.0"):
        backend.load(out, stale, "auto")
    with pytest.raises(CheckFailed, match="runs on a CUDA GPU only"):
        backend.load(out, manifest, "cpu")


def test_static_batch_and_single_format(backend, target, reference, images, tmp_path):
    config = _config(target, "fp32", batch=BatchSpec.fixed(4), formats=("engine",))
    result = backend.build(reference, config, tmp_path)
    assert set(result.artifacts) == {"model", "engine"} and result.artifacts["model"] == "model.engine"
    manifest = {"precision": "fp32", "artifacts": result.artifacts, **result.manifest}
    predict = backend.load(tmp_path, manifest, "auto")
    assert predict.module is None and predict.device.type == "cuda", "the raw engine has no torch module"
    with torch.no_grad():
        assert _relative(predict(images[:4]), reference(images[:4])) < 1e-3


def test_wrong_target_is_refused_on_this_gpu(backend, target):
    other = "datacenter" if target != "datacenter" else "jetson-orin"
    with pytest.raises(UsageError, match=f"--target {other} means .* this GPU is a --target {target}"):
        backend.check_config(_config(other, "fp16"))


def test_dla_build_when_the_device_has_one(backend, target, reference, images, tmp_path):
    cores = dla_core_count()
    if not cores:
        with pytest.raises(UsageError, match="DLA"):
            backend.check_config(_config(target, "fp16", dla_core=0))
        return
    config = _config(target, "fp16", dla_core=0, batch=BatchSpec.fixed(1))
    backend.check_config(config)
    result = backend.build(reference, config, tmp_path)
    assert result.manifest["tensorrt"]["device"] == "dla:0"
    # The placement comes from the engine inspector, and the DLA really runs layers (issue 14, item 2:
    # the dynamo path used to put every layer on the GPU while the manifest said DLA).
    layers = result.manifest["tensorrt"]["layers"]
    assert layers is not None and layers["reported_by"] == "TensorRT engine inspector"
    assert layers["dla_count"] > 0, f"no layer was placed on the DLA: {layers['gpu'][:5]}"
    predictor = backend.load(tmp_path, {**result.manifest, "artifacts": result.artifacts}, "cuda")
    assert predictor(images[:1]).shape == (1, 10)


@pytest.mark.parametrize("binding", ["cuda-python", "pycuda"])
def test_engine_runner_with_each_cuda_binding(built, images, binding):
    """The raw-engine runner gives the same logits through cuda-python and through pycuda (issue 14, item 9)."""
    module = {"cuda-python": "cuda", "pycuda": "pycuda"}[binding]
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{binding} is not installed")
    out, result, _ = built["fp32"]
    with EngineRunner(out / result.artifacts["engine"], cuda=binding) as runner:
        logits = torch.from_numpy(runner(images[:5].numpy()))
    with EngineRunner(out / result.artifacts["engine"]) as default:
        expected = torch.from_numpy(default(images[:5].numpy()))
    torch.testing.assert_close(logits, expected)


def test_fused_int8_build_is_one_engine_and_tracks_the_unfused_one(backend, built, target, reference, images, tmp_path):
    if "int8" not in built:
        pytest.skip("nvidia-modelopt is not installed")
    config = _config(target, "int8", images, fused=True)
    backend.check_config(config)
    result = backend.build(reference, config, tmp_path)
    assert result.manifest["tensorrt"]["engines"] == 1 and result.manifest["tensorrt"]["pytorch_ops"] == []
    assert result.manifest["requires"]["fused_ops"] is False, "every block is inside the engine: no resnet_edge:: op left for PyTorch"
    manifest = {
        "arch": "resnet20", "num_classes": 10, "shortcut": "A", "precision": "int8", "target": target,
        "artifacts": result.artifacts, "input": {"batch": config.batch.to_dict()}, **result.manifest,
    }
    fused_logits = backend.load(tmp_path, manifest, "auto")(images[:16])
    out, _, unfused_manifest = built["int8"]
    unfused_logits = backend.load(out, unfused_manifest, "auto")(images[:16])
    assert (fused_logits.argmax(1) == unfused_logits.argmax(1)).float().mean() >= 0.9
