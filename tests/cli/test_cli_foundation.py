"""The command line of the foundation: `models`, and `train`'s refusals (one line, exit 2, nothing written)."""

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from resnet_edge.cli import main


def test_models_json_has_every_field():
    result = CliRunner().invoke(main, ["models", "--json"])
    assert result.exit_code == 0
    rows = {row["name"]: row for row in json.loads(result.output)}
    assert rows["resnet50"]["params"] == 25_557_032
    for row in rows.values():
        assert {"name", "params", "gflops", "input_size", "family", "block", "depth"} <= set(row)


def test_models_table():
    result = CliRunner().invoke(main, ["models"])
    assert result.exit_code == 0 and "resnet1202" in result.output and "25,557,032" in result.output


@pytest.mark.parametrize(
    "args,message",
    [
        (["--arch", "resnet19", "--data", "shapes"], "Invalid value for '--arch'"),
        (["--arch", "resnet20", "--data", "/nonexistent/dir"], "data directory /nonexistent/dir does not exist"),
        (["--arch", "resnet20", "--data", "shapes:abc"], "must be an integer"),
    ],
)
def test_train_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    out = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "resnet_edge", "train", *args, "--out", str(out)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()


def test_empty_data_directory(tmp_path):
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(main, ["train", "--arch", "resnet20", "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [f"error: data directory {tmp_path / 'empty'} is empty; it needs one sub-folder of images per class"]


def test_corrupt_image_stops_training_with_its_name(tmp_path):
    from PIL import Image

    for split in ("train", "val"):
        for name in ("a", "b"):
            (tmp_path / "d" / split / name).mkdir(parents=True)
            Image.new("RGB", (32, 32)).save(tmp_path / "d" / split / name / "ok.png")
    (tmp_path / "d" / "train" / "a" / "bad.jpg").write_bytes(b"\xff\xd8 truncated")
    args = ["train", "--arch", "resnet20", "--data", str(tmp_path / "d"), "--out", str(tmp_path / "o"), "--epochs", "1", "--batch-size", "2", "--workers", "1"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert "cannot read image" in result.output and "bad.jpg" in result.output
    assert not (tmp_path / "o" / "last.pth").exists()
