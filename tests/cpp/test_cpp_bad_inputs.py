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
    """A scratch directory that the unprivileged user of non-root cases can enter too."""
    path = Path(tempfile.mkdtemp(prefix="re-cpp-bad-"))
    path.chmod(0o755)
    yield path
    for p in [path, *path.rglob("*")]:
        if p.is_dir() and not p.is_symlink():
            p.chmod(0o755)
    shutil.rmtree(path, ignore_errors=True)


def _as_nobody() -> list[str]:
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("needs setpriv to run as an unprivileged user")
    return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


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
        for path in [bundle, *bundle.iterdir()]:  # readable by the unprivileged user of as_nobody cases
            path.chmod(0o755 if path.is_dir() else 0o644)
        SETUPS[case.setup](scratch, bundle)
    paths = {"bundle": str(bundle), "image": str(_png(scratch / "good.png")), "tmp": str(scratch), "out": str(scratch / "out")}
    prefix = _as_nobody() if case.as_nobody else []
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


def test_the_table_is_complete():
    ids = [case.id for case in BATTERY]
    assert len(ids) == len(set(ids)) and len(ids) >= 15
    for case in BATTERY:
        assert case.exit_code in (1, 2) or case.exit_code > 128, case.id
        assert case.todo.strip(), f"{case.id} needs its what-to-do text (docs/errors.md)"
        assert case.setup is None or case.setup in SETUPS, case.id
        re.compile(case.stderr)
