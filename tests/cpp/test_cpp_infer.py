"""The C++ side: libresnet_edge and resnet-edge-infer, built with CMake into build/cpp once per
session (the ``cpp_build`` fixture of tests/cpp/conftest.py), checked against the Python pipeline
(preprocessing parity) and on bad input (more in test_cpp_bad_inputs.py).

Needs cmake, a C++ compiler, OpenCV (libopencv-dev), nlohmann-json3-dev and libssl-dev. Without
them the tests skip with the reason, except under CI (CI=true), where .ci/run installs them and a
missing one is a failure.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import golden
from helpers.cpp_bundles import TORCHSCRIPT_FP32
from helpers.cpp_bundles import compile_bundle as compile_ts
from resnet_edge import bundle as bundle_mod

REPO = Path(__file__).resolve().parents[2]
BUILD_DIR = REPO / "build" / "cpp"
INFER = BUILD_DIR / "resnet-edge-infer"
MAKE_VIDEO = BUILD_DIR / "resnet-edge-make-video"
TOLERANCE = 1e-4

# The first test builds the C++ targets (a few minutes on 2 cores) in its setup.
pytestmark = pytest.mark.timeout(1800)


def infer(*args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(INFER), *map(str, args)], capture_output=True, text=True, timeout=timeout, cwd=REPO
    )


def json_frames(result: subprocess.CompletedProcess) -> list[dict]:
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def compile_bundle(out: Path, *args: str) -> Path:
    return compile_ts(out, *TORCHSCRIPT_FP32, *args)


@pytest.fixture(scope="session")
def demo_bundle(trained_resnet20_checkpoint, tmp_path_factory) -> Path:
    """The demo model: the trained ResNet-20 (cifar preset, 32x32), fused ops when they are built."""
    return compile_bundle(tmp_path_factory.mktemp("cpp") / "r20", "--arch", "resnet20", "--weights", str(trained_resnet20_checkpoint))


@pytest.fixture(scope="session")
def imagenet_bundle(tmp_path_factory) -> Path:
    """An ImageNet-preset bundle (resize 256, crop 224): ResNet-18, random weights, unfused."""
    return compile_bundle(tmp_path_factory.mktemp("cpp") / "r18", "--arch", "resnet18", "--random-weights", "--no-fused")


@pytest.fixture(scope="session")
def golden_images(tmp_path_factory) -> list[Path]:
    return golden.make_images(tmp_path_factory.mktemp("golden"))


def check_parity(bundle_dir: Path, images: list[Path], frames: list[dict], saved_inputs: Path | None) -> dict:
    """Logits within TOLERANCE, same top-5 and, when saved, bit-identical model inputs."""
    record = golden.golden(bundle_dir, images)
    results = {images[i].name: frame["logits"] for i, frame in enumerate(frames)}
    report = golden.compare(record, results, TOLERANCE)
    print(f"{bundle_dir.name}: {report}")
    assert not report["missing"] and not report["over_tolerance"] and not report["top5_mismatches"], report
    for frame, item in zip(frames, record["images"]):
        assert [p["index"] for p in frame["top_k"]] == item["top5"]
    if saved_inputs is not None:
        expected = golden.python_inputs(bundle_mod.load(bundle_dir, device="cpu"), images).numpy()
        for i, path in enumerate(images):
            got = np.load(saved_inputs / f"frame_{i:06d}.npy")
            assert got.shape == expected[i].shape
            mismatched = int((got != expected[i]).sum())
            assert mismatched == 0, f"{path.name}: {mismatched} input values differ from the Python pipeline"
    return report


# ------------------------------------------------------------------------------------- parity


@pytest.mark.parametrize("which", ["demo", "imagenet"])
def test_parity_on_images(cpp_build, request, which, golden_images, tmp_path):
    bundle_dir = request.getfixturevalue(f"{which}_bundle")
    saved = tmp_path / "inputs"
    result = infer(bundle_dir, "--source", golden_images[0].parent, "--json", "--logits", "--threads", "2", "--save-input", saved)
    frames = json_frames(result)
    assert [Path(f["file"]).name for f in frames] == sorted(p.name for p in golden_images)
    images = sorted(golden_images)
    check_parity(bundle_dir, images, frames, saved)


@pytest.mark.parametrize("which", ["demo", "imagenet"])
def test_parity_on_a_video(cpp_build, request, which, tmp_path):
    bundle_dir = request.getfixturevalue(f"{which}_bundle")
    frames_png = golden.make_frames(tmp_path / "frames", count=6)
    video = tmp_path / "clip.mkv"
    made = subprocess.run([str(MAKE_VIDEO), str(video), "10", *map(str, frames_png)], capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    result = infer(bundle_dir, "--source", video, "--json", "--logits", "--threads", "2")
    frames = json_frames(result)
    assert [f["frame"] for f in frames] == list(range(len(frames_png)))
    check_parity(bundle_dir, frames_png, frames, None)


def test_batches_match_single_images(cpp_build, demo_bundle, golden_images):
    single = json_frames(infer(demo_bundle, "--source", golden_images[0].parent, "--json", "--logits"))
    batched = json_frames(infer(demo_bundle, "--source", golden_images[0].parent, "--json", "--logits", "--batch", "5"))
    assert len(single) == len(batched) == len(golden_images)
    for a, b in zip(single, batched):
        assert a["file"] == b["file"]
        assert np.abs(np.array(a["logits"]) - np.array(b["logits"])).max() < 1e-5
        assert [p["index"] for p in a["top_k"]] == [p["index"] for p in b["top_k"]]


def test_text_output_has_topk_and_fps(cpp_build, demo_bundle, golden_images):
    shapes = [p for p in golden_images if p.name.startswith("shapes_")]
    result = infer(demo_bundle, "--source", shapes[0], "--top-k", "3", "--repeat", "3")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    assert all(line.startswith(f"frame {i} ") and " fps " in line for i, line in enumerate(lines))
    classes = json.loads((demo_bundle / "manifest.json").read_text())["classes"]
    assert any(name in lines[0] for name in classes)
    assert lines[0].count("(") == 3  # three classes, each with its index
    assert "frame(s)" in result.stderr and "fps" in result.stderr


def test_json_scores_are_softmax(cpp_build, demo_bundle, golden_images):
    frame = json_frames(infer(demo_bundle, "--source", golden_images[0], "--json", "--logits", "--top-k", "6"))[0]
    expected = torch.softmax(torch.tensor(frame["logits"], dtype=torch.float64), 0)
    for p in frame["top_k"]:
        assert abs(p["score"] - float(expected[p["index"]])) < 1e-6
    assert {"preprocess", "inference", "total"} <= set(frame["latency_ms"])


def test_sixteen_bit_png_reads_as_v_over_65535(cpp_build, demo_bundle, tmp_path):
    """A 16-bit grey PNG of 32768 is 128/255 on both sides (Pillow alone clips it to 255)."""
    golden.write_png16(tmp_path / "half.png", np.full((40, 50), 32768, np.uint16))
    saved = tmp_path / "inputs"
    frames = json_frames(infer(demo_bundle, "--source", tmp_path / "half.png", "--json", "--save-input", saved))
    assert len(frames) == 1
    from PIL import Image

    transform = bundle_mod.load(demo_bundle, device="cpu").transform()
    expected = transform(Image.new("RGB", (50, 40), (128, 128, 128))).numpy()
    assert np.array_equal(np.load(saved / "frame_000000.npy"), expected)


# ------------------------------------------------------------------------------------ bad input


def assert_one_error_line(result: subprocess.CompletedProcess, code: int, *fragments: str) -> None:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == code, (result.returncode, result.stderr)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("resnet-edge-infer: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def copy_bundle(source: Path, target: Path, **manifest_changes) -> Path:
    shutil.copytree(source, target)
    if manifest_changes:
        manifest = json.loads((target / "manifest.json").read_text())
        manifest.update(manifest_changes)
        (target / "manifest.json").write_text(json.dumps(manifest))
    return target


def test_missing_bundle_and_manifest(cpp_build, demo_bundle, golden_images, tmp_path):
    image = golden_images[0]
    assert_one_error_line(infer(tmp_path / "nope", "--source", image), 2, "does not exist")
    broken = copy_bundle(demo_bundle, tmp_path / "b")
    (broken / "manifest.json").unlink()
    assert_one_error_line(infer(broken, "--source", image), 2, "no manifest.json")
    (broken / "manifest.json").write_text("{not json")
    assert_one_error_line(infer(broken, "--source", image), 1, "not valid JSON")


def test_tampered_bundle_is_refused(cpp_build, demo_bundle, golden_images, tmp_path):
    tampered = copy_bundle(demo_bundle, tmp_path / "t")
    with (tampered / "model.pt").open("ab") as model:
        model.write(b"\0")
    assert_one_error_line(infer(tampered, "--source", golden_images[0]), 1, "model.pt", "sha256")
    labels = copy_bundle(demo_bundle, tmp_path / "l")
    (labels / "labels.txt").write_text("edited\n")
    assert_one_error_line(infer(labels, "--source", golden_images[0]), 1, "labels.txt", "sha256")


def test_newer_schema_is_refused(cpp_build, demo_bundle, golden_images, tmp_path):
    newer = copy_bundle(demo_bundle, tmp_path / "n", schema_version=99)
    assert_one_error_line(infer(newer, "--source", golden_images[0]), 1, "schema_version 99")


@pytest.mark.parametrize("backend, fragment", [("onnxruntime", "onnxruntime bundle"), ("tensorrt", "Torch-TensorRT runtime")])
def test_backend_this_build_cannot_run(cpp_build, demo_bundle, golden_images, tmp_path, backend, fragment):
    cache = (BUILD_DIR / "CMakeCache.txt").read_text()
    if backend == "tensorrt" and "TORCHTRT_RUNTIME_LIBRARY:FILEPATH=" in cache and "TORCHTRT_RUNTIME_LIBRARY-NOTFOUND" not in cache:
        pytest.skip("this build links Torch-TensorRT's runtime, so it can run TensorRT bundles")
    other = copy_bundle(demo_bundle, tmp_path / backend, backend=backend)
    assert_one_error_line(infer(other, "--source", golden_images[0]), 1, fragment)


def test_unreadable_image(cpp_build, demo_bundle, golden_images, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png" * 10)
    assert_one_error_line(infer(demo_bundle, "--source", bad), 1, "cannot read image", "broken.png")
    # In a directory the good images are still classified, and the exit code says one failed.
    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(golden_images[0], folder / "a.png")
    shutil.copy(bad, folder / "b.png")
    result = infer(demo_bundle, "--source", folder, "--json")
    assert result.returncode == 1
    assert len(result.stdout.splitlines()) == 1 and "b.png" in result.stderr


def test_sources_that_cannot_be_opened(cpp_build, demo_bundle, tmp_path):
    assert_one_error_line(infer(demo_bundle, "--source", "/dev/video97"), 1, "cannot open camera /dev/video97")
    assert_one_error_line(infer(demo_bundle, "--source", tmp_path / "missing.mp4"), 2, "does not exist")
    not_video = tmp_path / "notes.txt"
    not_video.write_text("hello")
    assert_one_error_line(infer(demo_bundle, "--source", not_video), 1, "cannot open video")
    result = infer(demo_bundle, "--source", "nosuchelement0 ! appsink")
    assert_one_error_line(result, 1, "GStreamer")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_one_error_line(infer(demo_bundle, "--source", empty), 2, "no images")


def test_usage_errors(cpp_build, demo_bundle):
    assert_one_error_line(infer(demo_bundle), 2, "--source")
    assert_one_error_line(infer(demo_bundle, "--source", "x.png", "--top-k", "0"), 2, "--top-k")
    assert_one_error_line(infer(demo_bundle, "--source", "x.png", "--frobnicate"), 2, "--frobnicate")
    assert_one_error_line(infer(demo_bundle, "--source", __file__, "--device", "tpu"), 2, "unknown device")
    assert infer("--help").returncode == 0


# ------------------------------------------------------------------------- the embedding example


def test_embedding_example_from_the_docs(cpp_build, demo_bundle, tmp_path):
    source = (REPO / "csrc/app/example_embed.cpp").read_text().strip()
    assert source in (REPO / "docs/cpp.md").read_text(), "docs/cpp.md must show csrc/app/example_embed.cpp verbatim"
    assert len(source.splitlines()) <= 22
    frames = golden.make_frames(tmp_path / "frames", count=3)
    video = tmp_path / "clip.mkv"
    subprocess.run([str(MAKE_VIDEO), str(video), "5", *map(str, frames)], check=True, capture_output=True, timeout=120)
    example = str(BUILD_DIR / "resnet-edge-example")
    result = subprocess.run([example, str(demo_bundle), str(video)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3 and all(len(line.split()) == 6 for line in lines), result.stdout
    missing = subprocess.run([example, str(tmp_path / "nope"), str(video)], capture_output=True, text=True, timeout=60)
    assert missing.returncode == 1 and len(missing.stderr.strip().splitlines()) == 1 and "does not exist" in missing.stderr


# ----------------------------------------------------- pip TensorRT libraries (csrc/lib/cmake)

_STUB_PROJECT = """
cmake_minimum_required(VERSION 3.18)
project(trt_libs_stub C)
include("{module}")
resnet_edge_find_tensorrt_libs(found HINTS "${{TENSORRT_LIBS_DIR}}" "${{TORCH_INSTALL_PREFIX}}/../tensorrt_libs")
file(WRITE "${{CMAKE_BINARY_DIR}}/found.txt" "${{found}}")
add_library(wrapper SHARED wrapper.c)
target_link_libraries(wrapper PRIVATE "-Wl,--no-as-needed" "${{TORCHTRT}}" "-Wl,--as-needed")
if(found)
  resnet_edge_use_tensorrt_libs(wrapper "${{found}}")
endif()
add_executable(app app.c)
target_link_libraries(app PRIVATE wrapper)
"""


def _fake_pip_tensorrt(root: Path) -> tuple[Path, Path]:
    """site-packages with torch/ and tensorrt_libs/libnvinfer.so.11, and a stand-in for pip
    torch-tensorrt's libtorchtrt_runtime.so: it needs libnvinfer.so.11 and has no RUNPATH to it."""
    site = root / "site-packages"
    libs = site / "tensorrt_libs"
    libs.mkdir(parents=True)
    (site / "torch").mkdir()
    (libs / "__init__.py").write_text("")
    (root / "nvinfer.c").write_text("int nvinfer_version(void) { return 11; }\n")
    (root / "runtime.c").write_text("int nvinfer_version(void);\nint torchtrt_runtime(void) { return nvinfer_version() + 31; }\n")
    cc = shutil.which("cc") or "c++"
    subprocess.run([cc, "-shared", "-fPIC", str(root / "nvinfer.c"), "-Wl,-soname,libnvinfer.so.11", "-o", str(libs / "libnvinfer.so.11")], check=True)
    runtime = root / "torchtrt" / "libtorchtrt_runtime.so"
    runtime.parent.mkdir()
    subprocess.run([cc, "-shared", "-fPIC", str(root / "runtime.c"), "-o", str(runtime), str(libs / "libnvinfer.so.11")], check=True)
    return site, runtime


def _stub_build(root: Path, runtime: Path, *cache: str) -> subprocess.CompletedProcess:
    source = root / "project"
    source.mkdir()
    (source / "CMakeLists.txt").write_text(_STUB_PROJECT.format(module=REPO / "csrc/lib/cmake/TensorRTLibs.cmake"))
    (source / "wrapper.c").write_text("int torchtrt_runtime(void);\nint wrapper(void) { return torchtrt_runtime(); }\n")
    (source / "app.c").write_text("int wrapper(void);\nint main(void) { return wrapper() == 42 ? 0 : 1; }\n")
    build = root / "build"
    configure = subprocess.run(["cmake", "-S", str(source), "-B", str(build), f"-DTORCHTRT={runtime}", *cache], capture_output=True, text=True, timeout=120)
    assert configure.returncode == 0, configure.stdout + configure.stderr
    return subprocess.run(["cmake", "--build", str(build)], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("hint", ["TORCH_INSTALL_PREFIX", "TENSORRT_LIBS_DIR"])
def test_pip_tensorrt_libs_link_and_load_without_ld_library_path(tmp_path, hint):
    if shutil.which("cmake") is None or (shutil.which("cc") or shutil.which("c++")) is None:
        pytest.skip("needs cmake and a C compiler")
    site, runtime = _fake_pip_tensorrt(tmp_path)
    value = site / "torch" if hint == "TORCH_INSTALL_PREFIX" else site / "tensorrt_libs"
    built = _stub_build(tmp_path, runtime, f"-D{hint}={value}")
    assert built.returncode == 0, built.stdout + built.stderr
    assert (tmp_path / "build" / "found.txt").read_text() == str((site / "tensorrt_libs").resolve())
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    assert subprocess.run([str(tmp_path / "build" / "app")], env=env, timeout=30).returncode == 0


def test_without_tensorrt_libs_the_stub_fails_as_pip_torch_tensorrt_did(tmp_path):
    """The same layout without the module's help (JetPack's case: no tensorrt_libs to find): the
    link of the app cannot resolve libnvinfer.so.11, which is what issue 14.3 reported."""
    if shutil.which("cmake") is None or (shutil.which("cc") or shutil.which("c++")) is None:
        pytest.skip("needs cmake and a C compiler")
    _, runtime = _fake_pip_tensorrt(tmp_path)
    built = _stub_build(tmp_path, runtime)
    assert (tmp_path / "build" / "found.txt").read_text() == ""
    assert built.returncode != 0 and "libnvinfer.so.11" in built.stdout + built.stderr


def test_cmake_args_passes_the_venvs_tensorrt_libs(tmp_path):
    site, _ = _fake_pip_tensorrt(tmp_path) if shutil.which("cc") else (None, None)
    if site is None:
        pytest.skip("needs a C compiler")
    env = {**os.environ, "PYTHONPATH": str(site)}
    out = subprocess.run([sys.executable, str(REPO / "scripts/cmake_args.py")], capture_output=True, text=True, env=env, check=True).stdout
    assert f"-DTENSORRT_LIBS_DIR={(site / 'tensorrt_libs').resolve()}" in shlex.split(out)
    plain = subprocess.run([sys.executable, str(REPO / "scripts/cmake_args.py")], capture_output=True, text=True, check=True).stdout
    assert "TENSORRT_LIBS_DIR" not in plain  # no pip TensorRT in this venv: nothing changes
