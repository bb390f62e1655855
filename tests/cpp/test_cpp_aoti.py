"""AOTInductor bundles in the C++ app (issue 23 item 2): libresnet_edge runs ``model.pt2`` through
libtorch's ``AOTIModelPackageLoader`` with the same preprocessing (bit-exact inputs) and the same
logits as the Python pipeline (within 1e-5), and refuses a changed package or one built for another
torch / CPU with one line.

The package is the session's one (``helpers.aoti_bundles``: trained ResNet-20, batch 1..16).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from helpers import golden
from helpers.aoti_bundles import aoti_resnet20

REPO = Path(__file__).resolve().parents[2]
INFER = REPO / "build" / "cpp" / "resnet-edge-infer"
TOLERANCE = 1e-5

pytestmark = pytest.mark.timeout(1800)


def _infer(*args) -> subprocess.CompletedProcess:
    return subprocess.run([str(INFER), *map(str, args)], capture_output=True, text=True, timeout=300, cwd=REPO)


@pytest.fixture(scope="module")
def aoti_bundle(cpp_build, trained_resnet20_checkpoint, tmp_path_factory) -> Path:
    return aoti_resnet20(tmp_path_factory, trained_resnet20_checkpoint).path


def _logits(result: subprocess.CompletedProcess) -> np.ndarray:
    return np.array([json.loads(line)["logits"] for line in result.stdout.splitlines()], dtype=np.float64)


def _copy_with(bundle: Path, tmp_path: Path, **requires) -> Path:
    copy = tmp_path / "copy"
    shutil.copytree(bundle, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["requires"].update(requires)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    return copy


def test_parity_with_python(aoti_bundle, tmp_path):
    images = sorted(golden.make_images(tmp_path / "images"))
    saved = tmp_path / "inputs"
    result = _infer(aoti_bundle, "--source", images[0].parent, "--json", "--logits", "--threads", "2", "--save-input", saved)
    assert result.returncode == 0, result.stderr
    assert "aoti on cpu" in result.stderr
    frames = [json.loads(line) for line in result.stdout.splitlines()]
    assert [Path(f["file"]).name for f in frames] == [p.name for p in images]
    golden.assert_app_matches_python(aoti_bundle, images, frames, saved, TOLERANCE, "AOTInductor")


def test_batches_match_single_images(aoti_bundle, tmp_path):
    images = golden.make_images(tmp_path / "images", shapes=3)
    single = _infer(aoti_bundle, "--source", images[0].parent, "--json", "--logits")
    batched = _infer(aoti_bundle, "--source", images[0].parent, "--json", "--logits", "--batch", "4")
    assert single.returncode == 0 and batched.returncode == 0, single.stderr + batched.stderr
    a, b = _logits(single), _logits(batched)
    assert a.shape == b.shape and np.abs(a - b).max() < TOLERANCE


def test_a_changed_package_is_refused(aoti_bundle, tmp_path):
    tampered = _copy_with(aoti_bundle, tmp_path)
    with (tampered / "model.pt2").open("r+b") as package:
        package.seek(4096)
        package.write(b"\x00\x01\x02")
    images = golden.make_images(tmp_path / "images", shapes=1)
    result = _infer(tampered, "--source", images[0])
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1
    assert "model.pt2 does not match its sha256" in result.stderr


@pytest.mark.parametrize("requires, message", [
    ({"torch": "2.0.0+cpu"}, "built with torch 2.0.0+cpu and this libtorch is"),
    ({"cpu_arch": "riscv64"}, "compiled for riscv64 CPUs and this host is"),
    ({"cpu_isa": ["imaginary_isa"]}, "compiled for a CPU with imaginary_isa, which this CPU lacks"),
])
def test_a_package_for_another_host_is_refused(aoti_bundle, tmp_path, requires, message):
    images = golden.make_images(tmp_path / "images", shapes=1)
    result = _infer(_copy_with(aoti_bundle, tmp_path, **requires), "--source", images[0])
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert message in result.stderr


def test_a_cpu_package_is_not_run_on_a_gpu(aoti_bundle, tmp_path):
    images = golden.make_images(tmp_path / "images", shapes=1)
    result = _infer(aoti_bundle, "--source", images[0], "--device", "cuda")
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1
    assert ("runs only there" in result.stderr) or ("no CUDA GPU is visible" in result.stderr)
