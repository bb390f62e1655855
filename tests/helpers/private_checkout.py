"""Running a command as if the checkout had been cloned into a private (0700) directory, such as
``git clone URL $(mktemp -d)/r`` or a clone in ``/root``: what the unprivileged battery cases must
survive (issue 24).

The checkout is not moved: in a private mount namespace its parent directory is covered by an empty
0700 tmpfs and the checkout is bound back at its own path. Every absolute path (the venv's, the
editable install's, the C++ build's rpaths) stays valid, while another uid can no longer reach any
of it, exactly as in a fresh clone under ``mktemp -d``. Nothing outside the namespace changes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

MOUNT_REFUSED = 97  # the script's exit status when the namespace may not mount

# $1 the checkout, $2 an empty directory to hold it while its parent is covered, then the command.
_SCRIPT = r"""
set -eu
root=$1 handle=$2
shift 2
parent=$(dirname "$root")
mount --bind "$root" "$handle" || exit 97
mount -t tmpfs -o mode=0700 private "$parent" || exit 97
mkdir "$root"
mount --bind "$handle" "$root"
if setpriv --reuid=65534 --regid=65534 --clear-groups -- test -e "$root"; then
    echo "uid 65534 still reaches $root: the parent is not private" >&2
    exit 3
fi
cd "$root"
exec "$@"
"""


def run_from_private_parent(root: Path, command: list[str], timeout: float) -> subprocess.CompletedProcess:
    """Run ``command`` in ``root`` with ``root``'s parent made a 0700 directory (see the module
    docstring); skips the calling test where a mount namespace cannot be made."""
    root = Path(root).resolve()
    if os.geteuid() != 0 or not (shutil.which("unshare") and shutil.which("setpriv")):
        pytest.skip("a private mount namespace needs root, unshare and setpriv (util-linux)")
    if root.parent == Path("/"):
        pytest.skip(f"the checkout {root} sits in /, which cannot be covered")
    interpreter = Path(sys.prefix).resolve()
    if interpreter.is_relative_to(root.parent) and not interpreter.is_relative_to(root):
        pytest.skip(f"the Python environment {interpreter} sits beside the checkout and would be hidden with it")
    handle = Path(tempfile.mkdtemp(prefix="resnet-edge-checkout-"))
    try:
        result = subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", _SCRIPT, "sh", str(root), str(handle), *command],
            capture_output=True, text=True, timeout=timeout,
        )
    finally:
        handle.rmdir()
    if result.returncode == MOUNT_REFUSED or "unshare failed" in result.stderr:
        pytest.skip(f"this host does not allow a private mount namespace: {result.stderr.strip()[-300:]}")
    return result


def nested_pytest(node_ids: list[str], basetemp: Path) -> list[str]:
    """The command running ``node_ids`` in a pytest of their own (quiet, no cache, its own basetemp)."""
    return [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--basetemp={basetemp}", *node_ids]


def assert_all_passed(result: subprocess.CompletedProcess, count: int) -> None:
    """The nested pytest ran ``count`` tests and every one passed (a skip is a failure here)."""
    output = result.stdout + result.stderr
    summary = output.strip().splitlines()[-1] if output.strip() else ""
    assert result.returncode == 0 and summary.startswith(f"{count} passed") and "skipped" not in summary, output[-6000:]
