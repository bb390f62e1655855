"""Checkpoints and weights files: round trip, torchvision files, and the refusals."""

import re
import pytest
import torch
import torchvision

from resnet_edge.weights import infer_arch, load_weights, save_checkpoint
from resnet_edge.data import get_preset
from resnet_edge.core.errors import UsageError
from resnet_edge.models import create_model


def test_checkpoint_round_trip_keeps_classes_and_preprocessing(tmp_path):
    model = create_model("resnet20", num_classes=3).eval()
    path = tmp_path / "ckpt.pth"
    save_checkpoint(path, model, "resnet20", ["a", "b", "c"], get_preset("cifar"), epoch=4, val_acc1=0.9)
    loaded = load_weights(path)
    assert (loaded.arch, loaded.classes, loaded.source) == ("resnet20", ["a", "b", "c"], "checkpoint")
    assert loaded.preprocessing == get_preset("cifar") and loaded.metadata["epoch"] == 4
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded.model(x), model(x))
    assert not list(tmp_path.glob(".*.tmp")), "atomic save left a temporary file behind"


@pytest.mark.parametrize("shortcut", ["A", "B", "C"])
def test_shortcut_option_is_read_off_a_state_dict(shortcut):
    state = create_model("resnet34", shortcut=shortcut).state_dict()
    assert infer_arch(state) == ("resnet34", shortcut)


def test_torchvision_file_for_another_depth_is_refused(tmp_path):
    path = tmp_path / "r18.pth"
    torch.save(torchvision.models.resnet18().state_dict(), path)
    with pytest.raises(UsageError, match="holds resnet18 weights, not resnet34"):
        load_weights(path, arch="resnet34")


def test_checkpoint_of_another_arch_or_class_count_is_refused(tmp_path):
    path = tmp_path / "ckpt.pth"
    save_checkpoint(path, create_model("resnet20", num_classes=6), "resnet20", list("abcdef"), get_preset("cifar"))
    with pytest.raises(UsageError, match="is for resnet20, not resnet32"):
        load_weights(path, arch="resnet32")
    with pytest.raises(UsageError, match="has 6 classes, but 10"):
        load_weights(path, num_classes=10)


def test_missing_and_non_torch_files_are_refused(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        load_weights(tmp_path / "nope.pth")
    junk = tmp_path / "junk.pth"
    junk.write_text("hello")
    with pytest.raises(UsageError, match="not a PyTorch weights file"):
        load_weights(junk)


def test_resolve_weights_takes_plain_arguments(tmp_path, caplog):
    from resnet_edge.weights import resolve_weights

    first = resolve_weights("resnet20", random_weights=True)
    second = resolve_weights("resnet20", random_weights=True)
    assert first.source == "random" and first.classes == [str(i) for i in range(10)]
    assert all(torch.equal(a, b) for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values()))
    assert "--random-weights: this bundle is for speed measurements only" in caplog.text
    path = tmp_path / "ckpt.pth"
    save_checkpoint(path, create_model("resnet20", num_classes=3), "resnet20", ["a", "b", "c"], get_preset("cifar"))
    assert resolve_weights("resnet20", path).classes == ["a", "b", "c"]
    with pytest.raises(UsageError, match="either --weights or --random-weights"):
        resolve_weights("resnet20", path, random_weights=True)


@pytest.mark.parametrize(
    "payload,message",
    [
        ({"format": "resnet-edge-checkpoint", "state_dict": {}}, "it has no 'arch'"),
        ({"format": "resnet-edge-checkpoint", "arch": "resnet20"}, "it has no 'state_dict'"),
        ({"format": "resnet-edge-checkpoint", "arch": 20, "state_dict": {}, "classes": [], "preprocessing": {}}, "'arch' is not a model name"),
        ({"format": "resnet-edge-checkpoint", "arch": "resnet20", "state_dict": {"x": 1}, "classes": [], "preprocessing": {}}, "not a dict of tensors"),
        ({"format": "resnet-edge-checkpoint", "arch": "resnet9", "state_dict": {}, "classes": [], "preprocessing": {}}, "unknown arch 'resnet9'"),
        ({"format": "resnet-edge-checkpoint", "arch": "resnet20", "state_dict": {}, "classes": [], "preprocessing": {}}, "'preprocessing' is incomplete"),
    ],
)
def test_a_damaged_checkpoint_is_refused_by_structure(tmp_path, payload, message):
    """Issue 13: the format marker alone does not make a checkpoint; its fields are checked before use."""
    torch.save(payload, tmp_path / "w.pth")
    with pytest.raises(UsageError, match=re.escape(message)):
        load_weights(tmp_path / "w.pth")
