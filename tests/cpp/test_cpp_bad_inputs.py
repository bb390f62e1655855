"""resnet-edge-infer on bad inputs and faults (issue 13): a table of cases, each with its command,
exit code (2 usage, 1 failed check, 128 + N after signal N), the one line it prints on stderr, the
state of its outputs afterwards and what a user should do (docs/errors.md is rendered from it by
scripts/errors_doc.py).

The cases are the shared battery format (tests/helpers/battery.py: ``Case``). Differences from the
CLI's battery: the app's error line is ``resnet-edge-infer: error: ...`` (not ``error: ...``), and a
signal case sends its signal once the first frame is on stdout (the app prints nothing on stderr
before the end). Signal cases also check that every ``--save-input`` file is complete.

Placeholders in argv and outputs: {bundle} a good torchscript bundle (or the case's broken copy,
made by its ``setup`` step), {image} a good image, {tmp} the case's scratch directory, {out} {tmp}/out.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers.battery import ABSENT, UNCHANGED, Case, fill, leftovers, snapshot
from helpers.battery_cpp import BATTERY
from helpers.cpp_bundles import TORCHSCRIPT_FP32, compile_bundle
from helpers.private_checkout import assert_all_passed, nested_pytest, run_from_private_parent
from helpers.unprivileged import unprivileged_prefix

REPO = Path(__file__).resolve().parents[2]
INFER = REPO / "build" / "cpp" / "resnet-edge-infer"
PROGRAM = "resnet-edge-infer"
ERROR_PREFIX = "resnet-edge-infer: error: "

pytestmark = pytest.mark.timeout(1800)


# ------------------------------------------------------------------------------ setups


def _png(path: Path, size=(40, 30)) -> Path:
    Image.new("RGB", size, (200, 40, 90)).save(path)
    return path


def _edit_manifest(bundle: Path, text: str | bytes) -> None:
    target = bundle / "manifest.json"
    target.write_bytes(text if isinstance(text, bytes) else text.encode())


def _truncated_manifest(_tmp: Path, bundle: Path) -> None:
    text = (bundle / "manifest.json").read_bytes()
    _edit_manifest(bundle, text[: len(text) // 2])


def _oversized_manifest(_tmp: Path, bundle: Path) -> None:
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["padding"] = "x" * (17 << 20)  # valid JSON, over the 16 MiB limit
    _edit_manifest(bundle, json.dumps(manifest))


def _append_byte(name: str) -> Callable[[Path, Path], None]:
    def setup(_tmp: Path, bundle: Path) -> None:
        with (bundle / name).open("ab") as f:
            f.write(b"\0")

    return setup


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")


def _bomb_png(tmp: Path, _bundle: Path) -> None:
    """A 30000 x 30000 RGB PNG header (900 M pixels, 2.7 GB decoded) on a few bytes of data."""
    ihdr = (30000).to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0])
    data = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + _png_chunk(b"IEND", b"")
    (tmp / "bomb.png").write_bytes(data)


def _truncated_png(tmp: Path, _bundle: Path) -> None:
    Image.effect_noise((200, 150), 60).convert("RGB").save(tmp / "full.png")
    data = (tmp / "full.png").read_bytes()
    (tmp / "cut.png").write_bytes(data[: len(data) // 2])


def _truncated_jpeg(tmp: Path, _bundle: Path) -> None:
    Image.effect_noise((200, 150), 60).convert("RGB").save(tmp / "full.jpg", quality=90)
    data = (tmp / "full.jpg").read_bytes()
    (tmp / "cut.jpg").write_bytes(data[: len(data) // 2])  # Pillow: "image file is truncated"


def _unreadable_png(tmp: Path, _bundle: Path) -> None:
    _png(tmp / "secret.png").chmod(0)


def _readonly_out(tmp: Path, _bundle: Path) -> None:
    (tmp / "out").mkdir()
    (tmp / "out" / "frame_000000.npy").write_bytes(b"earlier run")
    (tmp / "out").chmod(0o555)


def _write(name: str, data: bytes) -> Callable[[Path, Path], None]:
    def setup(tmp: Path, _bundle: Path) -> None:
        (tmp / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp / name).write_bytes(data)

    return setup


def _set_manifest(**changes) -> Callable[[Path, Path], None]:
    def setup(_tmp: Path, bundle: Path) -> None:
        _edit_manifest(bundle, json.dumps({**json.loads((bundle / "manifest.json").read_text()), **changes}))

    return setup


def _remove(name: str) -> Callable[[Path, Path], None]:
    def setup(_tmp: Path, bundle: Path) -> None:
        (bundle / name).unlink()

    return setup


def _model_moved_out(link: bool = False, absolute: bool = False) -> Callable[[Path, Path], None]:
    """model.pt moved to {tmp}/outside, hashes intact: left behind as a symlink, or named there by a
    relative or absolute path in the manifest."""
    def setup(tmp: Path, bundle: Path) -> None:
        outside = tmp / "outside" / "model.pt"
        outside.parent.mkdir()
        (bundle / "model.pt").rename(outside)
        if link:
            (bundle / "model.pt").symlink_to(outside)
        else:
            _rename_model(bundle, str(outside) if absolute else os.path.relpath(outside, bundle))

    return setup


def _rename_model(bundle: Path, name: str) -> None:
    """The manifest names model.pt ``name`` (in files and artifacts), with the same sha256."""
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["files"][name] = manifest["files"].pop("model.pt")
    manifest["artifacts"]["model"] = name
    _edit_manifest(bundle, json.dumps(manifest))


def _images_dir(tmp: Path, _bundle: Path) -> None:
    (tmp / "images").mkdir()
    for i in range(4):
        _png(tmp / "images" / f"img_{i}.png", (64 + 8 * i, 48))


SETUPS: dict[str, Callable[[Path, Path], None]] = {
    "remove-manifest": _remove("manifest.json"),
    "truncate-manifest": _truncated_manifest,
    "oversize-manifest": _oversized_manifest,
    "manifest-array": lambda tmp, b: _edit_manifest(b, "[1, 2, 3]"),
    "schema-99": _set_manifest(schema_version=99),
    "append-to-model": _append_byte("model.pt"),
    "append-to-labels": _append_byte("labels.txt"),
    "remove-model": _remove("model.pt"),
    "backend-onnxruntime": _set_manifest(backend="onnxruntime"),
    "model-named-outside": _model_moved_out(),
    "model-named-absolute": _model_moved_out(absolute=True),
    "model-symlinked-outside": _model_moved_out(link=True),
    "model-name-nul": lambda tmp, b: _rename_model(b, "model.pt\0.txt"),  # a C path ends at the NUL: model.pt
    "truncated-png": _truncated_png,
    "truncated-jpeg": _truncated_jpeg,
    "bomb-png": _bomb_png,
    "text-as-png": _write("notes.png", b"just some text\n" * 20),
    "text-file": _write("notes.txt", b"hello\n"),
    "empty-dir": lambda tmp, b: (tmp / "empty").mkdir(),
    "unreadable-png": _unreadable_png,
    "readonly-out": _readonly_out,
    "plain-file": _write("file", b"keep me"),
    "images-dir": _images_dir,
}

# ------------------------------------------------------------------------------ the table



# ------------------------------------------------------------------------------ running a case


def _compile(out: Path, *args: str) -> Path:
    return compile_bundle(out, *TORCHSCRIPT_FP32, *args)


@pytest.fixture(scope="module")
def small_bundle(cpp_build, tmp_path_factory) -> Path:
    """A ResNet-20 torchscript bundle (random weights, unfused: no ops library needed)."""
    return _compile(tmp_path_factory.mktemp("bad") / "r20", "--arch", "resnet20", "--random-weights", "--no-fused")


@pytest.fixture()
def scratch():
    """A scratch directory, removed with what the cases made read-only in it."""
    path = Path(tempfile.mkdtemp(prefix="re-cpp-bad-"))
    yield path
    for p in [path, *path.rglob("*")]:
        if p.is_dir() and not p.is_symlink():
            p.chmod(0o755)
    shutil.rmtree(path, ignore_errors=True)


def _run(case: Case, command: list[str]) -> subprocess.CompletedProcess:
    if case.signal is None:
        return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    first = process.stdout.readline()  # the first frame is out: the run is under way
    assert first.startswith("frame 0"), first + process.stderr.read()
    process.send_signal(case.signal)
    stdout, stderr = process.communicate(timeout=120)
    return subprocess.CompletedProcess(command, process.returncode, first + stdout, stderr)


def _check_complete_npy(out: Path, frames: int) -> None:
    assert not list(out.glob("*.partial")), "a partial --save-input file was left"
    saved = sorted(out.glob("frame_*.npy"))
    assert len(saved) == frames
    for path in saved:
        assert np.load(path).shape == (3, 32, 32)


@pytest.mark.parametrize("case", BATTERY, ids=[c.id for c in BATTERY])
def test_bad_input(small_bundle, scratch, case: Case):
    bundle = small_bundle
    if case.setup is not None:
        bundle = scratch / "bundle"
        shutil.copytree(small_bundle, bundle)
        SETUPS[case.setup](scratch, bundle)
    paths = {"bundle": str(bundle), "image": str(_png(scratch / "good.png")), "tmp": str(scratch), "out": str(scratch / "out")}
    prefix = unprivileged_prefix([INFER, Path(sys.prefix)]) if case.unprivileged else []  # the app and its libtorch
    before = {name: snapshot(Path(name.format(**paths))) for name, state in case.outputs if state == UNCHANGED}
    result = _run(case, [*prefix, str(INFER), *fill(case.argv, paths)])

    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == case.exit_code, (result.returncode, result.stderr)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(ERROR_PREFIX) and re.search(case.stderr, lines[0]), lines[0]
    for name, state in case.outputs:
        path = Path(name.format(**paths))
        if state == ABSENT:
            assert not path.exists(), f"{path} was created"
        else:
            assert snapshot(path) == before[name], f"{path} changed"
        assert leftovers(path) == [], f"temporaries beside {path}"
    if case.signal is not None:  # as many --save-input files as frames reported, each whole
        frames = int(re.search(r"after (\d+) frame", lines[0]).group(1))
        assert frames == len(result.stdout.splitlines())
        _check_complete_npy(scratch / "out", frames)


@pytest.mark.slow
def test_the_unprivileged_cases_pass_from_a_private_checkout(cpp_build, tmp_path):
    """The unreadable-image and unwritable --save-input cases with the checkout in a 0700 directory
    (helpers/private_checkout.py): they measure the app, not the directory's mode (issue 24)."""
    ids = [f"tests/cpp/test_cpp_bad_inputs.py::test_bad_input[{case.id}]" for case in BATTERY if case.unprivileged]
    assert len(ids) >= 2
    result = run_from_private_parent(REPO, nested_pytest(ids, tmp_path / "nested"), timeout=1500)
    assert_all_passed(result, len(ids))


def test_the_table_is_complete():
    ids = [case.id for case in BATTERY]
    assert len(ids) == len(set(ids)) and len(ids) >= 15
    for case in BATTERY:
        assert case.exit_code in (1, 2) or case.exit_code > 128, case.id
        assert case.todo.strip(), f"{case.id} needs its what-to-do text (docs/errors.md)"
        assert case.setup is None or case.setup in SETUPS, case.id
        re.compile(case.stderr)
