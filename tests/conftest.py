"""Shared fixtures. Training is the expensive part, so one ResNet-20 is trained once per session."""

import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from resnet_edge.train import TrainConfig, train

# The demo's recipe at test scale: 2400 shapes images, batch 32, 900 SGD steps (about 2 min on 2 idle cores).
TRAINED_RESNET20 = dict(arch="resnet20", data="shapes", epochs=12, batch_size=32, lr=0.05, workers=0, seed=0)
# Developers running the suite many times may point this at a directory: the trained checkpoint is
# kept there (keyed by the recipe) and reused by later sessions. CI leaves it unset and trains once.
CACHE_ENV = "RESNET_EDGE_TEST_CACHE"


@pytest.fixture(scope="session", autouse=True)
def _two_threads():
    # The CI machine has 2 cores; more threads only contend.
    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def trained_resnet20_checkpoint(tmp_path_factory):
    """Path of a resnet-edge checkpoint of ResNet-20 trained on the built-in shapes set."""
    cache = os.environ.get(CACHE_ENV)
    recipe = json.dumps(TRAINED_RESNET20, sort_keys=True)
    if cache:
        kept = Path(cache) / "trained_resnet20"
        if (kept / "best.pth").is_file() and (kept / "recipe.json").is_file() and (kept / "recipe.json").read_text() == recipe:
            return kept / "best.pth"
    out = tmp_path_factory.mktemp("trained_resnet20")
    train(TrainConfig(out=str(out), **TRAINED_RESNET20))
    if cache:
        staging = Path(cache) / f".trained_resnet20.{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(out, staging)
        (staging / "recipe.json").write_text(recipe)
        shutil.rmtree(kept, ignore_errors=True)
        staging.rename(kept)
        return kept / "best.pth"
    return out / "best.pth"
