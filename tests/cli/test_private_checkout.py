"""The battery's unprivileged cases (a file the program may not read, a directory it may not write)
from a checkout in a private (0700) directory, and how they run or skip (issue 24). The C++ app's
cases get the same test in tests/cpp/test_cpp_bad_inputs.py."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from helpers.battery_cli import CASES
from helpers.private_checkout import assert_all_passed, nested_pytest, run_from_private_parent
from helpers.unprivileged import blocking_directory, unprivileged_prefix

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_unprivileged_cases_pass_from_a_private_checkout(tmp_path):
    ids = [f"tests/cli/test_bad_inputs.py::test_bad_input[{case.id}]" for case in CASES if case.unprivileged]
    assert len(ids) >= 2
    result = run_from_private_parent(ROOT, nested_pytest(ids, tmp_path / "nested"), timeout=900)
    assert_all_passed(result, len(ids))


def test_the_prefix_makes_file_permissions_bind(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("x")
    secret.chmod(0)
    (tmp_path / "ro").mkdir(mode=0o555)
    prefix = unprivileged_prefix([tmp_path])
    read = subprocess.run([*prefix, "cat", str(secret)], capture_output=True, text=True)
    write = subprocess.run([*prefix, "touch", str(tmp_path / "ro" / "new")], capture_output=True, text=True)
    assert read.returncode != 0 and "Permission denied" in read.stderr
    assert write.returncode != 0 and "Permission denied" in write.stderr


def test_a_checkout_such_a_process_cannot_reach_skips_naming_the_directory_mode(tmp_path):
    private = tmp_path / "private"
    (private / "repo").mkdir(parents=True)
    private.chmod(0o600)  # no search permission, even for its owner (once root's capabilities are dropped)
    try:
        expected = f"{private} is mode 0600, owned by uid {private.stat().st_uid}"
        assert blocking_directory(private / "repo") == expected
        assert blocking_directory(tmp_path) is None
        with pytest.raises(pytest.skip.Exception, match=f"cannot reach {private}/repo: {expected}"):
            unprivileged_prefix([private / "repo"])
    finally:
        private.chmod(0o700)
