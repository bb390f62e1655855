"""The foundation layer: atomic writes, one device rule, logging records, termination signals."""

import logging
import os
import signal
import subprocess
import sys

import pytest
import torch

from resnet_edge.core import io, logs, signals
from resnet_edge.core.device import resolve_device
from resnet_edge.core.errors import UsageError


def test_write_atomic_replaces_whole_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "deep" / "report.json"
    io.write_json(target, {"a": 1})
    io.write_json(target, {"a": 2})
    assert target.read_text() == '{\n  "a": 2\n}\n'
    assert sorted(p.name for p in target.parent.iterdir()) == ["report.json"]


def test_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "baseline.json"
    target.write_text("old\n")
    with pytest.raises(RuntimeError):
        with io.atomic_path(target) as temporary:
            temporary.write_text("half")
            raise RuntimeError("disk full")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["baseline.json"]


def test_staging_dir_is_removed_with_the_parents_it_made(tmp_path):
    out = tmp_path / "a" / "b" / "bundle"
    with pytest.raises(KeyboardInterrupt):
        with io.staging_dir(out) as tmp:
            (tmp / "model.onnx").write_bytes(b"x")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_replace_dir_swaps_an_existing_directory(tmp_path):
    out = tmp_path / "bundle"
    out.mkdir()
    (out / "old").write_text("1")
    with io.staging_dir(out) as tmp:
        (tmp / "new").write_text("2")
        io.replace_dir(tmp, out, replace=True)
    assert [p.name for p in tmp_path.iterdir()] == ["bundle"]
    assert [p.name for p in out.iterdir()] == ["new"]


def test_replace_dir_without_replace_never_replaces_what_appeared_meanwhile(tmp_path):
    """Two compiles to one --out, neither with --force: the one that renames second must fail, however
    close the two finish (the rename is the check), and leave the first one's bundle as it was."""
    out = tmp_path / "bundle"
    with pytest.raises(UsageError, match="already exists; pass --force"):
        with io.staging_dir(out) as tmp:
            (tmp / "second").write_text("2")
            out.mkdir()  # the other compile's bundle lands after this one's own check
            (out / "first").write_text("1")
            io.replace_dir(tmp, out, replace=False)
    assert [p.name for p in tmp_path.iterdir()] == ["bundle"]
    assert [p.name for p in out.iterdir()] == ["first"]


def test_json_default_and_output_path_checks(tmp_path):
    assert io.json_text({"p": tmp_path, "x": torch.tensor(1.5)}) == f'{{\n  "p": "{tmp_path}",\n  "x": 1.5\n}}\n'
    with pytest.raises(UsageError, match="is a directory"):
        io.check_output_path(tmp_path, "--report")
    (tmp_path / "file").write_text("")
    with pytest.raises(UsageError, match="is not a directory"):
        io.check_output_path(tmp_path / "file" / "r.json", "--report")


def test_one_device_rule():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(UsageError, match="unknown device 'tpu'"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match="no CUDA GPU is visible"):
            resolve_device("cuda")


def test_warnings_are_records_not_strings():
    log = logging.getLogger("resnet_edge.some.module")
    with logs.collect_warnings() as warnings:
        log.info("progress")
        log.warning("classes missing")
    assert warnings == ["classes missing"]


def test_cli_formatter_prefixes_warnings(capsys):
    logs.configure(0, stream=sys.stderr)
    try:
        logging.getLogger("resnet_edge.x").warning("careful")
        logging.getLogger("resnet_edge.x").info("plain")
        logging.getLogger("resnet_edge.x").debug("hidden")
    finally:
        logs.configure(0)
    assert capsys.readouterr().err.splitlines() == ["warning: careful", "plain"]


def test_an_inherited_ignored_sighup_stays_ignored():
    """``nohup`` ignores SIGHUP so a long run outlives its terminal: install() must not undo that."""
    script = (
        "import os, signal\n"
        "from resnet_edge.core import signals\n"
        "signals.install()\n"
        "assert signal.getsignal(signal.SIGTERM) is not signal.SIG_IGN\n"
        "os.kill(os.getpid(), signal.SIGHUP)\n"
        "print('survived')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                            preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
    assert result.returncode == 0 and result.stdout.strip() == "survived", result.stderr


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_termination_signals_run_cleanup(tmp_path, signum):
    script = (
        "import os, signal, time\n"
        "from pathlib import Path\n"
        "from resnet_edge.core import io, signals\n"
        "signals.install()\n"
        f"out = Path({str(tmp_path / 'bundle')!r})\n"
        "try:\n"
        "    with io.staging_dir(out) as tmp:\n"
        "        (tmp / 'x').write_text('partial')\n"
        f"        os.kill(os.getpid(), {int(signum)})\n"
        "        time.sleep(5)\n"
        "except signals.Terminated as stop:\n"
        "    raise SystemExit(128 + stop.signum)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 128 + signum, result.stderr
    assert list(tmp_path.iterdir()) == []
