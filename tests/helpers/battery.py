"""The bad-input battery's case format and its checks, shared by the CLI battery
(tests/cli/test_bad_inputs.py) and the C++ app's (tests/cpp/test_cpp_bad_inputs.py); docs/errors.md
is rendered from both tables by scripts/errors_doc.py.

A case's stderr contract:
* the error is ONE line, matching ``stderr`` (``re.search``), and it is the last non-empty line;
* without ``progress`` it is the only non-empty line on stderr (runs pass ``-q`` where needed);
  with ``progress`` earlier lines may be progress/info/``warning:`` lines, never another error;
* no ``Traceback`` anywhere;
* every path in ``outputs`` is afterwards ``absent`` or ``unchanged`` (byte-identical, and no
  temporary ``.NAME.*.tmp`` / ``.NAME.*.partial`` beside it).
"""

from __future__ import annotations

import hashlib
import re
import signal as signals
from dataclasses import dataclass, field
from pathlib import Path

ABSENT, UNCHANGED = "absent", "unchanged"


@dataclass(frozen=True)
class Case:
    """One bad input or fault, its expected outcome and what a user should do about it."""

    id: str
    argv: tuple[str, ...]  # after the program name; "{name}" placeholders are filled from the run's paths
    exit_code: int  # 2 usage, 1 failed check or failed write, 128+N signal N
    stderr: str  # regex of the one error line
    todo: str  # what to do (docs/errors.md)
    outputs: tuple[tuple[str, str], ...] = ()  # (placeholder or path, ABSENT | UNCHANGED)
    setup: str | None = None  # name of a setup step that creates the bad input
    signal: int | None = None  # send this signal once ``signal_when`` appears on stderr
    signal_when: str | None = None  # regex of a stderr line that marks "past start-up"
    ulimit_fsize: int | None = None  # RLIMIT_FSIZE in bytes (a full disk without a mount)
    unprivileged: bool = False  # run without privileges (a file it may not read, a directory it may not write): helpers/unprivileged.py
    subprocess: bool = False  # a real process: signals, limits and users need one
    progress: bool = False  # other (non-error) lines may precede the error line
    xfail: str | None = None  # a known gap, with the issue that tracks it
    timeout: float = 120

    @property
    def command(self) -> str:
        """The subcommand (the first word that is not an option)."""
        return next((word for word in self.argv if not word.startswith("-")), "resnet-edge")


def fill(words, paths: dict[str, str]) -> list[str]:
    """``argv`` with ``{name}`` placeholders replaced by ``paths[name]``."""
    return [word.format(**paths) for word in words]


def snapshot(path: Path) -> bytes | dict | None:
    """The state of an output: file bytes, {relative name: sha256} of a directory, or None if absent."""
    path = Path(path)
    if path.is_file():
        return path.read_bytes()
    if path.is_dir():
        return {p.relative_to(path).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.rglob("*")) if p.is_file()}
    return None


def leftovers(path: Path) -> list[str]:
    """Temporary files or staging directories left beside ``path``."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    return sorted(p.name for p in path.parent.iterdir() if re.fullmatch(rf"\.{re.escape(path.name)}\..*\.(tmp|partial|old)", p.name))


def check_stderr(case: Case, stderr: str) -> None:
    """Assert the case's stderr contract (see the module docstring)."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines, f"{case.id}: nothing on stderr"
    if not case.progress:
        assert len(lines) == 1, f"{case.id}: expected one stderr line, got:\n{stderr}"
    errors = [line for line in lines if line.startswith("error:")]
    assert errors == [lines[-1]], f"{case.id}: the last line must be the only error line:\n{stderr}"
    assert re.search(case.stderr, lines[-1]), f"{case.id}: {lines[-1]!r} does not match {case.stderr!r}"


def check_outputs(case: Case, paths: dict[str, str], before: dict[str, object]) -> None:
    """Assert every output is absent or unchanged, with no temporaries beside it."""
    for name, state in case.outputs:
        path = Path(name.format(**paths))
        if state == ABSENT:
            assert not path.exists(), f"{case.id}: {path} exists"
        else:
            assert snapshot(path) == before[name], f"{case.id}: {path} changed"
        assert leftovers(path) == [], f"{case.id}: temporaries left beside {path}: {leftovers(path)}"


def signal_name(case: Case) -> str:
    return signals.Signals(case.signal).name if case.signal else ""


@dataclass
class Outcome:
    """What a run of a case gave."""

    exit_code: int
    stderr: str
    stdout: str = ""
    extra: dict = field(default_factory=dict)
