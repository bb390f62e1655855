"""OpenVINO backend on a random-weights ResNet-20 (small: the whole module runs in ~20 s): FP32 and
INT8 build, load through bundle.load with their hashes checked, and agree with the ONNX Runtime bundle."""

import json

import pytest
import torch

from resnet_edge import bundle
from resnet_edge.backends import Predictor, backend_availability, get_backend
from resnet_edge.core.errors import CheckFailed, UsageError
from resnet_edge.pipelines.compile import CompileOptions, compile_bundle

pytestmark = pytest.mark.skipif(not backend_availability("openvino")[0], reason=backend_availability("openvino")[1])


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(backend, precision) -> bundle path, built once per module (resnet20, random weights)."""
    cache = {}

    def build(backend, precision):
        if (backend, precision) not in cache:
            out = tmp_path_factory.mktemp(f"{backend}-{precision}") / "bundle"
            compile_bundle(CompileOptions(
                arch="resnet20", random_weights=True, precision=precision, backend=backend, out=out,
                calib_data="shapes:120" if precision == "int8" else None, calib_images=16, calib_method="max",
            ))  # fmt: skip
            cache[backend, precision] = out
        return cache[backend, precision]

    return build


def images(count=6):
    from resnet_edge.data import eval_transform, get_preset, open_data

    dataset = open_data("shapes:120").split("val", transform=eval_transform(get_preset("cifar")))
    return torch.stack([dataset[i][0] for i in range(count)])


def test_fp32_is_openvino_ir_and_matches_onnxruntime(built):
    path = built("openvino", "fp32")
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["backend"] == "openvino" and manifest["artifacts"] == {"model": "model.xml", "weights": "model.bin"}
    assert set(manifest["files"]) >= {"model.xml", "model.bin"}
    assert manifest["openvino"]["version"].startswith("2026.4") and manifest["openvino"]["inference_precision"] == "f32"
    assert manifest["requires"]["device"] == "cpu"
    loaded = bundle.load(path)
    assert isinstance(loaded.predictor, Predictor) and loaded.predictor.device == torch.device("cpu") and loaded.predictor.module is None
    batch = images()
    expected = bundle.load(built("onnxruntime", "fp32")).predict(batch)
    actual = loaded.predict(batch)
    assert (actual - expected).abs().max() <= 1e-4 * expected.abs().max()


def test_int8_tracks_the_onnxruntime_bundle_and_simulates_with_its_scales(built):
    path = built("openvino", "int8")
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["artifacts"]["qdq_onnx"] == "model.qdq.onnx" and manifest["quantization"]["placement"] == "onnxruntime-cpu"
    loaded = bundle.load(path)
    batch = images()
    ort = bundle.load(built("onnxruntime", "int8")).predict(batch)
    actual = loaded.predict(batch)
    assert (actual - ort).abs().max() / ort.abs().max() < 0.1
    simulated = loaded.simulator()(batch)
    assert (simulated - actual).abs().max() / actual.abs().max() < 0.1


def test_a_changed_weights_file_is_refused(built, tmp_path):
    import shutil

    copy = tmp_path / "b"
    shutil.copytree(built("openvino", "fp32"), copy)
    data = bytearray((copy / "model.bin").read_bytes())
    data[100] ^= 0xFF
    (copy / "model.bin").write_bytes(bytes(data))
    with pytest.raises(CheckFailed, match="model.bin"):
        bundle.load(copy)


def test_contract_refusals():
    backend = get_backend("openvino")
    assert backend.targets == ("cpu",) and not backend.can_fuse
    manifest = {"artifacts": {"model": "model.xml"}, "precision": "fp32"}
    with pytest.raises(UsageError, match="CPU only"):
        backend.load("/nonexistent", manifest, "cuda")
