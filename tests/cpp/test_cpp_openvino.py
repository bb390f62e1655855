"""OpenVINO bundles in the C++ app (issue 15 item 2): libresnet_edge runs them through the OpenVINO
C++ runtime of the openvino pip wheel (found by CMake from the venv: scripts/cmake_args.py), with
the same logits as the Python pipeline; a build without OpenVINO refuses them with one line.

The bundle comes from ``resnet-edge compile --backend openvino`` (resnet_edge/backends/openvino.py).
"""

from __future__ import annotations

import importlib.util
import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import golden
from helpers.cpp_bundles import compile_bundle

REPO = Path(__file__).resolve().parents[2]
BUILD_DIR = REPO / "build" / "cpp"
INFER = BUILD_DIR / "resnet-edge-infer"
TOLERANCE = 1e-4

pytestmark = pytest.mark.timeout(1800)


def _infer(*args) -> subprocess.CompletedProcess:
    return subprocess.run([str(INFER), *map(str, args)], capture_output=True, text=True, timeout=300, cwd=REPO)


def _built_with_openvino() -> bool:
    """Whether libresnet_edge.so links OpenVINO's runtime (its soname is in the dynamic section)."""
    return b"libopenvino.so" in (BUILD_DIR / "libresnet_edge.so").read_bytes()


def _compile(out: Path, *args: str) -> Path:
    return compile_bundle(out, *args)


@pytest.fixture(scope="module")
def openvino_bundle(cpp_build, trained_resnet20_checkpoint, tmp_path_factory) -> Path:
    if importlib.util.find_spec("openvino") is None:
        pytest.skip("openvino is not installed (pip install -r requirements.txt)")
    return _compile(tmp_path_factory.mktemp("ov") / "r20-ov", "--backend", "openvino", "--fp32", "--arch", "resnet20",
                    "--weights", str(trained_resnet20_checkpoint))


def test_parity_with_python(openvino_bundle, tmp_path):
    if not _built_with_openvino():
        pytest.skip("build/cpp was configured without OpenVINO")
    images = sorted(golden.make_images(tmp_path / "images"))
    saved = tmp_path / "inputs"
    result = _infer(openvino_bundle, "--source", images[0].parent, "--json", "--logits", "--threads", "2", "--save-input", saved)
    assert result.returncode == 0, result.stderr
    frames = [json.loads(line) for line in result.stdout.splitlines()]
    assert [Path(f["file"]).name for f in frames] == [p.name for p in images]
    assert "openvino on cpu" in result.stderr
    golden.assert_app_matches_python(openvino_bundle, images, frames, saved, TOLERANCE, "OpenVINO")


def test_batches_and_devices(openvino_bundle, tmp_path):
    if not _built_with_openvino():
        pytest.skip("build/cpp was configured without OpenVINO")
    images = golden.make_images(tmp_path / "images", shapes=3)
    single = _infer(openvino_bundle, "--source", images[0].parent, "--json", "--logits")
    batched = _infer(openvino_bundle, "--source", images[0].parent, "--json", "--logits", "--batch", "4")
    assert single.returncode == 0 and batched.returncode == 0, single.stderr + batched.stderr
    a = np.array([json.loads(line)["logits"] for line in single.stdout.splitlines()])
    b = np.array([json.loads(line)["logits"] for line in batched.stdout.splitlines()])
    assert a.shape == b.shape and np.abs(a - b).max() < 1e-5
    gpu = _infer(openvino_bundle, "--source", images[0], "--device", "cuda")
    assert gpu.returncode == 1 and len(gpu.stderr.strip().splitlines()) == 1 and "runs on the CPU" in gpu.stderr


def test_tampered_weights_are_refused(openvino_bundle, tmp_path):
    tampered = tmp_path / "t"
    shutil.copytree(openvino_bundle, tampered)
    with (tampered / "model.bin").open("r+b") as weights:
        weights.seek(100)
        weights.write(b"\x7f")
    images = golden.make_images(tmp_path / "images", shapes=1)
    result = _infer(tampered, "--source", images[0])
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1
    assert "model.bin does not match its sha256" in result.stderr


def test_a_build_without_openvino_refuses_with_one_line(openvino_bundle, tmp_path):
    """The refusal path, through the stub in classifier.cpp: a second, small configure of the library
    alone would take minutes, so this runs only where build/cpp itself lacks OpenVINO."""
    if _built_with_openvino():
        pytest.skip("build/cpp has OpenVINO; the refusal is compiled out (see classifier.cpp's stub)")
    images = golden.make_images(tmp_path / "images", shapes=1)
    result = _infer(openvino_bundle, "--source", images[0])
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1
    assert "OpenVINO bundle and this build of libresnet_edge has no OpenVINO runtime" in result.stderr


def test_cmake_args_points_at_the_venvs_openvino():
    if importlib.util.find_spec("openvino") is None:
        pytest.skip("openvino is not installed")
    out = subprocess.run([sys.executable, str(REPO / "scripts/cmake_args.py")], capture_output=True, text=True, check=True).stdout
    found = [arg.split("=", 1)[1] for arg in shlex.split(out) if arg.startswith("-DOpenVINO_DIR=")]
    assert len(found) == 1 and (Path(found[0]) / "OpenVINOConfig.cmake").is_file()
