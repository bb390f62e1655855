"""Shared fixtures. Training is the expensive part, so one ResNet-20 is trained once per session."""

import pytest
import torch

from resnet_edge.train import TrainConfig, train

# The demo's recipe at test scale: 2400 shapes images, batch 32, 900 SGD steps (about 2 min on 2 idle cores).
TRAINED_RESNET20 = dict(arch="resnet20", data="shapes", epochs=12, batch_size=32, lr=0.05, workers=0, seed=0)


@pytest.fixture(scope="session", autouse=True)
def _two_threads():
    # The CI machine has 2 cores; more threads only contend.
    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def trained_resnet20_checkpoint(tmp_path_factory):
    """Path of a resnet-edge checkpoint of ResNet-20 trained on the built-in shapes set."""
    out = tmp_path_factory.mktemp("trained_resnet20")
    train(TrainConfig(out=str(out), **TRAINED_RESNET20), echo=lambda _: None)
    return out / "best.pth"
