"""Every file a manifest names stays inside the bundle: names (no '..', absolute paths, drive letters,
backslashes, NUL) and symlinks, on reading (read_manifest, load with or without hashes) and writing.
The C++ reader's side of the same rule is in tests/cpp (the battery's artifact-* cases)."""

import json
import os

import pytest

from helpers.fake_bundle import make_bundle, minimal_manifest
from resnet_edge import bundle
from resnet_edge.bundle.containment import name_is_contained
from resnet_edge.core.errors import CheckFailed

ESCAPING_NAMES = [
    "../outside/model.bin",
    "sub/../../model.bin",
    "/abs/model.bin",
    "C:model.bin",
    "C:/model.bin",
    "sub\\model.bin",
    "..\\model.bin",
    "model.bin\0.txt",
    "",
    ".",
    "./model.bin",
    "sub//model.bin",
    "sub/",
]


def _rename_in_manifest(out, old: str, new: str) -> None:
    """Point ``files`` and ``artifacts`` at ``new`` instead of ``old``, keeping the recorded sha256."""
    path = out / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["files"][new] = manifest["files"].pop(old)
    manifest["artifacts"] = {role: new if name == old else name for role, name in manifest["artifacts"].items()}
    path.write_text(json.dumps(manifest))


@pytest.mark.parametrize("name", ESCAPING_NAMES, ids=repr)
def test_a_name_that_leaves_the_bundle_is_refused_even_with_the_right_hash(tmp_path, fake_backend, name):
    out = make_bundle(tmp_path / "b")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "model.bin").write_bytes((out / "model.bin").read_bytes())  # the hash matches
    _rename_in_manifest(out, "model.bin", name)
    expected = f"{out / 'manifest.json'}: file name {json.dumps(name)} leaves the bundle directory; rebuild the bundle"
    for read in (bundle.read_manifest, bundle.load, lambda path: bundle.load(path, verify=False)):
        with pytest.raises(CheckFailed) as error:
            read(out)
        assert str(error.value) == expected
    assert not name_is_contained(name)


@pytest.mark.parametrize("name", ["model.bin", "sub/model.bin", "a.b/c-d_e.bin", "..model.bin", "model.bin.."])
def test_relative_names_inside_the_bundle_are_accepted(name):
    assert name_is_contained(name)


def test_a_bundle_with_a_subdirectory_round_trips(tmp_path, fake_backend):
    with bundle.staging(tmp_path / "b") as tmp:
        (tmp / "weights").mkdir()
        (tmp / "weights" / "model.bin").write_bytes(b"weights")
        bundle.write_manifest(tmp, minimal_manifest(artifacts={"model": "weights/model.bin"}))
    assert bundle.load(tmp_path / "b").manifest["artifacts"]["model"] == "weights/model.bin"


def _symlink_model_out(out, tmp_path):
    """model.bin replaced by a symlink to an identical file outside the bundle (hashes still match)."""
    outside = tmp_path / "elsewhere" / "model.bin"
    outside.parent.mkdir()
    (out / "model.bin").rename(outside)
    (out / "model.bin").symlink_to(outside)
    return outside


def test_a_symlink_that_leaves_the_bundle_is_refused(tmp_path, fake_backend):
    out = make_bundle(tmp_path / "b")
    outside = _symlink_model_out(out, tmp_path)
    expected = f"bundle {out}: model.bin is a symlink that leaves the bundle (to {outside}); a copied bundle would break: copy the file in"
    for read in (bundle.read_manifest, bundle.load, lambda path: bundle.load(path, verify=False)):
        with pytest.raises(CheckFailed) as error:
            read(out)
        assert str(error.value) == expected


def test_a_symlinked_directory_that_leaves_the_bundle_is_refused(tmp_path, fake_backend):
    with bundle.staging(tmp_path / "b") as tmp:
        (tmp / "weights").mkdir()
        (tmp / "weights" / "model.bin").write_bytes(b"weights")
        bundle.write_manifest(tmp, minimal_manifest(artifacts={"model": "weights/model.bin"}))
    out = tmp_path / "b"
    (out / "weights").rename(tmp_path / "weights")
    (out / "weights").symlink_to(tmp_path / "weights")
    with pytest.raises(CheckFailed, match=r"weights/model.bin is a symlink that leaves the bundle"):
        bundle.load(out)


def test_symlinks_that_stay_inside_and_a_symlinked_bundle_are_accepted(tmp_path, fake_backend):
    out = make_bundle(tmp_path / "b")
    (out / "model.bin").rename(out / "real.bin")
    (out / "model.bin").symlink_to("real.bin")  # relative, inside: a copy keeps it working
    (tmp_path / "link").symlink_to(out)  # the bundle directory itself may be reached through a link
    assert bundle.load(tmp_path / "link").classes == ["a", "b", "c"]  # loads, hashes checked


def test_an_artifact_not_listed_in_files_is_refused(tmp_path, fake_backend):
    out = make_bundle(tmp_path / "b")
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["artifacts"]["model"] = "other.bin"  # would be loaded without a hash check
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CheckFailed, match=r'artifact "other.bin" \(model\) is not listed in files'):
        bundle.read_manifest(out)


@pytest.mark.parametrize("kind", ["symlink-out", "colon-name", "backslash-name"])
def test_compile_never_writes_a_bundle_the_readers_refuse(tmp_path, kind):
    """write_manifest applies the readers' rule to the files it lists; nothing reaches --out."""
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"weights")
    message = {"symlink-out": "is a symlink that leaves the bundle", "colon-name": r'file name "a:b" leaves', "backslash-name": r'file name "a\\\\b" leaves'}
    with pytest.raises(RuntimeError, match=message[kind]):
        with bundle.staging(tmp_path / "b") as tmp:
            (tmp / "model.bin").write_bytes(b"weights")
            if kind == "symlink-out":
                (tmp / "extra.bin").symlink_to(outside)
            else:
                (tmp / ("a:b" if kind == "colon-name" else "a\\b")).write_bytes(b"x")
            bundle.write_manifest(tmp, minimal_manifest())
    assert sorted(os.listdir(tmp_path)) == ["outside.bin"]  # no bundle, no staging directory
