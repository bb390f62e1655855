"""Training: a short run on shapes learns, resume continues, torchrun runs DDP on 2 gloo processes."""

import json
import os
import subprocess
import sys

import pytest

from resnet_edge.weights import load_weights
from resnet_edge.core.errors import UsageError
from resnet_edge.train import TrainConfig, train


def test_short_run_on_shapes_reaches_high_accuracy(trained_resnet20_checkpoint):
    loaded = load_weights(trained_resnet20_checkpoint)
    assert loaded.arch == "resnet20" and loaded.classes[0] == "circle"
    assert loaded.metadata["val_acc1"] >= 0.85


def test_resume_continues_from_last_epoch(tmp_path):
    config = TrainConfig(arch="resnet20", data="shapes:96", out=str(tmp_path), epochs=1, batch_size=32, workers=0)
    train(config)
    config.epochs, config.resume = 2, True
    summary = train(config)
    assert summary["epoch"] == 2
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]


def test_resume_refuses_another_arch(tmp_path):
    train(TrainConfig(arch="resnet20", data="shapes:48", out=str(tmp_path), epochs=1, batch_size=24, workers=0))
    with pytest.raises(UsageError, match="is a resnet20 run, not resnet32"):
        train(TrainConfig(arch="resnet32", data="shapes:48", out=str(tmp_path), epochs=2, workers=0, resume=True))


def test_torchrun_ddp_with_two_gloo_processes(tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "resnet_edge", "train", "--arch", "resnet20", "--data", "shapes:96", "--epochs", "1",
        "--batch-size", "16", "--workers", "0", "--device", "cpu", "--out", str(out),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "2 process(es) on cpu" in result.stdout
    assert result.stdout.count("epoch 1/1  loss") == 1, "only rank 0 logs"
    assert load_weights(out / "last.pth").metadata["epoch"] == 1


def test_an_earlier_run_is_kept_unless_resume_or_force(tmp_path):
    """Issue 13: a new run over an earlier one's checkpoints is refused; --force starts afresh."""
    config = TrainConfig(arch="resnet20", data="shapes:48", out=str(tmp_path), epochs=1, batch_size=24, workers=0)
    train(config)
    before = (tmp_path / "last.pth").read_bytes()
    with pytest.raises(UsageError, match=r"holds an earlier run \(last.pth, best.pth\); pass --resume to continue it, --force"):
        train(config)
    assert (tmp_path / "last.pth").read_bytes() == before
    config.force = True
    assert train(config)["epoch"] == 1
    assert [json.loads(line)["epoch"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()] == [1]
