"""Running a battery case without privileges: the cases whose point is a file the program may not
read or write (``Case.unprivileged``).

Such a case needs a process that file permissions bind. Root is given one by dropping its
capabilities (``setpriv``), not by switching to another uid: it stays uid 0, so it still reaches a
checkout in root's private (0700) directory, where uid 65534 could not even load the package and the
case would measure the directory's mode instead of the program. A process without capabilities
(any ordinary user) runs the case as it is. Where the process could not reach what it runs (a
checkout below a directory that neither its uid nor its groups may enter) the case is skipped with
a reason naming that directory and its mode.
"""

from __future__ import annotations

import os
import shutil
import stat
import sys
from pathlib import Path

import pytest

DROP_CAPABILITIES = ["setpriv", "--inh-caps=-all", "--ambient-caps=-all", "--bounding-set=-all", "--"]


def _effective_capabilities() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    return 0


def _may_search(directory: Path, uid: int, groups: set[int]) -> bool:
    """Whether ``uid`` with ``groups`` and no capabilities may pass through ``directory`` (the owner's
    bits bind the owner, the group's bits the group, as the kernel applies them; ACLs aside)."""
    info = directory.stat()
    if info.st_uid == uid:
        return bool(info.st_mode & stat.S_IXUSR)
    if info.st_gid in groups:
        return bool(info.st_mode & stat.S_IXGRP)
    return bool(info.st_mode & stat.S_IXOTH)


def blocking_directory(path: Path) -> str | None:
    """The first directory on the way to ``path`` that this process, without its capabilities, may
    not enter, with its mode and owner; None when the way is open."""
    uid, groups = os.geteuid(), {os.getegid(), *os.getgroups()}
    path = Path(path).absolute()
    for directory in [*reversed(path.parents), *([path] if path.is_dir() else [])]:
        if not _may_search(directory, uid, groups):
            info = directory.stat()
            return f"{directory} is mode {stat.S_IMODE(info.st_mode):04o}, owned by uid {info.st_uid}"
    return None


def unprivileged_prefix(needs: list[Path]) -> list[str]:
    """The command prefix that runs a program without capabilities; skips the calling test when
    that cannot be done or when such a program could not reach one of ``needs``."""
    for path in needs:
        blocked = blocking_directory(path)
        if blocked:
            pytest.skip(
                f"a process without privileges cannot reach {path}: {blocked}; run the tests from a "
                f"checkout whose directories uid {os.geteuid()} may enter by their mode"
            )
    if _effective_capabilities() == 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("dropping root's capabilities needs setpriv (util-linux)")
    return DROP_CAPABILITIES


def python_needs(root: Path) -> list[Path]:
    """What ``python -m resnet_edge`` run from the checkout ``root`` reads: the interpreter, the
    virtual environment and its base installation, and the package."""
    return [Path(sys.executable), Path(sys.prefix), Path(sys.base_prefix), Path(root) / "resnet_edge"]
