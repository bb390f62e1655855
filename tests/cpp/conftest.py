"""The C++ build shared by tests/cpp: ``cpp_build`` configures and builds build/cpp once per session
with the same two commands as ``make cpp`` (docs/cpp.md), incrementally after the first time."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD_DIR = REPO / "build" / "cpp"


def _missing_dependencies() -> list[str]:
    missing = [tool for tool in ("cmake", "c++") if shutil.which(tool) is None]
    roots = [Path("/usr/lib"), Path("/usr/local/lib"), Path("/usr/share"), Path("/usr/local/share")]
    wanted = {
        "OpenCV (apt-get install libopencv-dev)": "cmake/opencv4/OpenCVConfig.cmake",
        "nlohmann-json (apt-get install nlohmann-json3-dev)": "cmake/nlohmann_json/nlohmann_jsonConfig.cmake",
    }
    for name, tail in wanted.items():
        if not any(list(root.glob(tail)) + list(root.glob(f"*/{tail}")) for root in roots):
            missing.append(name)
    if not Path("/usr/include/openssl/evp.h").is_file():
        missing.append("OpenSSL headers (apt-get install libssl-dev)")
    return missing


def _run_logged(command: list[str], log: Path, timeout: float) -> None:
    with log.open("a") as out:
        out.write(f"$ {' '.join(command)}\n")
        out.flush()
        result = subprocess.run(command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, timeout=timeout)
    if result.returncode != 0:
        tail = "".join(log.read_text().splitlines(keepends=True)[-40:])
        pytest.fail(f"{' '.join(command)} failed (exit {result.returncode}); the end of {log}:\n{tail}")


@pytest.fixture(scope="session")
def cpp_build() -> Path:
    """Configure and build the C++ targets into build/cpp (incremental: fast when up to date)."""
    missing = _missing_dependencies()
    if missing:
        reason = "the C++ build needs " + ", ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(reason + " (CI must install them: .ci/run)")
        pytest.skip(reason)
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    log = BUILD_DIR / "pytest-build.log"
    log.write_text("")
    start = time.monotonic()
    # The same commands as `make cpp` (docs/cpp.md).
    args = subprocess.run([sys.executable, str(REPO / "scripts/cmake_args.py")], capture_output=True, text=True, check=True)
    configure = ["cmake", "-S", str(REPO), "-B", str(BUILD_DIR), "-DCMAKE_BUILD_TYPE=Release", *shlex.split(args.stdout)]
    _run_logged(configure, log, timeout=300)
    _run_logged(["cmake", "--build", str(BUILD_DIR), "-j2"], log, timeout=1500)
    print(f"C++ build: {time.monotonic() - start:.0f}s")
    assert (BUILD_DIR / "resnet-edge-infer").is_file() and (BUILD_DIR / "resnet-edge-make-video").is_file()
    return BUILD_DIR
