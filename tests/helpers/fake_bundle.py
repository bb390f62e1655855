"""A tiny bundle for the bundle tests: a fake backend (no torch model) and a minimal manifest."""

import sys

import torch

from resnet_edge import bundle
from resnet_edge.backends import Backend, CallablePredictor, get_backend
from resnet_edge.core import hostinfo


class FakeBackend(Backend):
    """Writes a tiny 'model' file; its predictor returns a fixed linear map and records batch sizes."""

    name = "fake"
    precisions = ("fp32",)

    def __init__(self):
        self.seen = []

    def available(self):
        return True, "always"

    def build(self, model, config, out_dir):
        (out_dir / "model.bin").write_bytes(b"weights")
        return None

    def load(self, bundle_dir, manifest, device="auto"):
        def predict(batch):
            self.seen.append(batch.shape[0])
            return batch.flatten(1)[:, :3] * 2

        return CallablePredictor(predict, torch.device("cpu"))


def minimal_manifest(**changes):
    manifest = {
        "arch": "resnet20",
        "shortcut": "A",
        "num_classes": 3,
        "classes": ["a", "b", "c"],
        "preprocessing": {"name": "cifar", "resize": 32, "crop": 4, "mean": [0.5] * 3, "std": [0.25] * 3,
                          "interpolation": "bilinear", "channel_order": "RGB", "layout": "NCHW"},
        "input": {"name": "input", "dtype": "float32", "shape": [4, 3, 4, 4], "batch": {"min": 4, "opt": 4, "max": 4}},
        "output": {"name": "logits", "dtype": "float32", "shape": [4, 3]},
        "precision": "fp32",
        "backend": "fake",
        "target": "cpu",
        "fused": False,
        "artifacts": {"model": "model.bin"},
        "build_host": hostinfo.host_facts(),
        "reference": {"weights": None, "sha256": None, "source": "random", "random_weights": True, "top1": None},
        "requires": {"device": "any", "gpu": None, "tensorrt": None, "fused_ops": False},
    }
    manifest.update(changes)
    return manifest


def register_fake_backend(monkeypatch) -> FakeBackend:
    """A ``FakeBackend`` that ``bundle.load`` finds under the name ``fake`` (for the test's duration)."""
    backend = FakeBackend()
    # get_backend's own module holds the instances it hands out (wherever the registry lives).
    monkeypatch.setitem(sys.modules[get_backend.__module__]._instances, "fake", backend)
    return backend


def make_bundle(out, **changes):
    with bundle.staging(out) as tmp:
        (tmp / "model.bin").write_bytes(b"weights")
        bundle.write_manifest(tmp, minimal_manifest(**changes))
    return out
