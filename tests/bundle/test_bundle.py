"""The bundle directory: atomic staging, manifest writing/reading, hash and host checks, predict."""

import json
import os

import pytest
import torch

from helpers.fake_bundle import make_bundle, minimal_manifest
from resnet_edge import bundle
from resnet_edge.backends import BatchSpec
from resnet_edge.core import hostinfo
from resnet_edge.core.errors import CheckFailed, UsageError


def leftovers(directory):
    return sorted(p.name for p in directory.iterdir())


def test_staging_renames_into_place_with_manifest_labels_and_hashes(tmp_path):
    out = make_bundle(tmp_path / "b")
    assert leftovers(tmp_path) == ["b"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert list(manifest)[:2] == ["schema_version", "created"] and manifest["schema_version"] == bundle.SCHEMA_VERSION
    assert (out / "labels.txt").read_text().splitlines() == ["a", "b", "c"]
    assert set(manifest["files"]) == {"model.bin", "labels.txt"}
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o777 & ~umask  # an ordinary directory, not mkdtemp's private one


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()])
def test_an_interrupted_build_leaves_nothing_behind(tmp_path, error):
    out = tmp_path / "deeper" / "still" / "b"
    with pytest.raises(type(error)):
        with bundle.staging(out) as tmp:
            (tmp / "model.bin").write_bytes(b"half")
            raise error
    assert leftovers(tmp_path) == []  # the parents it created are gone too


def test_a_block_that_never_writes_the_manifest_is_not_a_bundle(tmp_path):
    with pytest.raises(RuntimeError, match="write_manifest"):
        with bundle.staging(tmp_path / "b") as tmp:
            (tmp / "model.bin").write_bytes(b"x")
    assert leftovers(tmp_path) == []


def test_existing_out_needs_force_and_force_replaces_only_bundles(tmp_path):
    out = make_bundle(tmp_path / "b")
    with pytest.raises(UsageError, match="already exists; pass --force"):
        bundle.staging(out).__enter__()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("mine")
    with pytest.raises(UsageError, match="not a bundle"):
        bundle.check_out_dir(tmp_path / "notes", force=True)
    with bundle.staging(out, force=True) as tmp:
        (tmp / "model.bin").write_bytes(b"new weights")
        bundle.write_manifest(tmp, minimal_manifest())
    assert (out / "model.bin").read_bytes() == b"new weights"
    assert leftovers(tmp_path) == ["b", "notes"]


def test_a_failed_forced_rebuild_keeps_the_old_bundle(tmp_path):
    out = make_bundle(tmp_path / "b")
    with pytest.raises(KeyboardInterrupt):
        with bundle.staging(out, force=True) as tmp:
            (tmp / "model.bin").write_bytes(b"partial")
            raise KeyboardInterrupt
    assert (out / "model.bin").read_bytes() == b"weights"
    assert leftovers(tmp_path) == ["b"]


def test_load_round_trip_and_predict_pads_and_splits_to_the_static_batch(tmp_path, fake_backend):
    out = make_bundle(tmp_path / "b")
    loaded = bundle.load(out)
    assert loaded.classes == ["a", "b", "c"] and loaded.arch == "resnet20"
    assert loaded.preprocessing.crop == 4 and loaded.batch == BatchSpec(4, 4, 4)
    assert loaded.reference["random_weights"] and loaded.reference_weights is None
    images = torch.randn(10, 3, 4, 4)
    logits = loaded.predict(images)
    assert torch.equal(logits, images.flatten(1)[:, :3] * 2)
    assert fake_backend.seen == [4, 4, 4]  # 4 + 4 + (2 padded to 4)
    assert loaded.backend is fake_backend and loaded.predictor.device == torch.device("cpu") and loaded.predictor.module is None
    with pytest.raises(UsageError, match="takes N x 3 x 4 x 4"):
        loaded.predict(torch.randn(2, 3, 5, 5))


def test_a_changed_or_missing_file_is_refused(tmp_path, fake_backend):
    out = make_bundle(tmp_path / "b")
    (out / "model.bin").write_bytes(b"tampered")
    with pytest.raises(CheckFailed, match="model.bin does not match its sha256"):
        bundle.load(out)
    (out / "model.bin").unlink()
    with pytest.raises(CheckFailed, match="model.bin is missing"):
        bundle.load(out)


def test_newer_schema_bad_json_and_non_bundles_are_refused(tmp_path, fake_backend):
    out = make_bundle(tmp_path / "b")
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["schema_version"] = bundle.SCHEMA_VERSION + 1
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CheckFailed, match="newer than this resnet-edge reads"):
        bundle.load(out)
    (out / "manifest.json").write_text("{not json")
    with pytest.raises(CheckFailed, match="not valid JSON"):
        bundle.load(out)
    with pytest.raises(UsageError, match="does not exist"):
        bundle.load(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="is not a bundle"):
        bundle.load(tmp_path / "empty")


def test_a_bundle_for_another_gpu_or_tensorrt_is_refused(tmp_path, fake_backend, monkeypatch):
    orin = {"name": "Orin", "compute_capability": "8.7"}
    out = make_bundle(tmp_path / "gpu", requires={"device": "cuda", "gpu": orin, "tensorrt": "10.3.0", "fused_ops": False})
    monkeypatch.setattr(hostinfo, "gpu_info", lambda index=0: None)
    with pytest.raises(CheckFailed, match="needs a CUDA GPU"):
        bundle.load(out)
    monkeypatch.setattr(hostinfo, "gpu_info", lambda index=0: {"name": "NVIDIA H100", "compute_capability": "9.0"})
    with pytest.raises(CheckFailed, match=r"built for Orin \(compute capability 8.7\) and this host has NVIDIA H100 \(compute capability 9.0\)"):
        bundle.load(out)
    monkeypatch.setattr(hostinfo, "gpu_info", lambda index=0: dict(orin))
    monkeypatch.setattr(hostinfo, "package_version", lambda key: "10.7.0" if key == "tensorrt" else None)
    with pytest.raises(CheckFailed, match="built with TensorRT 10.3.0 and this host has TensorRT 10.7.0"):
        bundle.load(out)
    monkeypatch.setattr(hostinfo, "package_version", lambda key: "10.3.0" if key == "tensorrt" else None)
    assert bundle.load(out).target == "cpu"


def test_an_unknown_backend_in_a_manifest_is_a_clear_failure(tmp_path):
    out = make_bundle(tmp_path / "b", backend="tvm")
    with pytest.raises(CheckFailed, match="needs the tvm backend"):
        bundle.load(out)


def test_class_names_with_line_breaks_cannot_go_into_labels(tmp_path):
    with pytest.raises(UsageError, match="line breaks"):
        make_bundle(tmp_path / "b", classes=["a\nb", "c", "d"])
    assert leftovers(tmp_path) == []


def test_hardware_compatible_engines_accept_any_ampere_or_newer_gpu(monkeypatch, tmp_path):
    from resnet_edge.bundle import check_host
    from resnet_edge.core import hostinfo
    from resnet_edge.core.errors import CheckFailed

    def manifest(portable: bool) -> dict:
        gpu = {"name": "NVIDIA A100", "compute_capability": "8.0", "hardware_compatible": portable}
        return {"requires": {"device": "cuda", "gpu": gpu, "tensorrt": None, "fused_ops": False}}

    monkeypatch.setattr(hostinfo, "gpu_info", lambda index=0: {"name": "NVIDIA H200", "compute_capability": "9.0"})
    check_host(tmp_path, manifest(True))
    with pytest.raises(CheckFailed, match="artifact only runs on the GPU it was built for"):
        check_host(tmp_path, manifest(False))
    monkeypatch.setattr(hostinfo, "gpu_info", lambda index=0: {"name": "Tesla T4", "compute_capability": "7.5"})
    with pytest.raises(CheckFailed):
        check_host(tmp_path, manifest(True))
