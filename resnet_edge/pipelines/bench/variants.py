"""The things ``bench`` times: the bundle as an application calls it, and the eager FP32 baseline."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

import torch

from ...backends import Backend, backend_availability, get_backend, list_backends
from ...bundle import Bundle
from ...models import create_model
from .options import BASELINE_VARIANT


@dataclass
class Variant:
    """One thing to time: ``run`` takes a host NCHW float32 batch and returns host logits."""

    name: str
    description: str
    device: str  # "cpu" or "cuda": the device type it runs on
    run: Callable[[torch.Tensor], torch.Tensor]
    module: torch.nn.Module | None = None  # a torch module on CUDA, for --cuda-graphs
    batch_range: tuple[int, int] | None = None  # (min, max) the artifact accepts per call


def example_batch(size: int, shape: tuple[int, ...]) -> torch.Tensor:
    """A deterministic random-normal float32 batch of ``size`` images of ``shape`` (C, H, W)."""
    generator = torch.Generator().manual_seed(size)
    return torch.randn((size, *shape), generator=generator)


def eager_variant(manifest: dict, device: torch.device) -> Variant:
    """Eager FP32 PyTorch of the bundle's arch, BatchNorm unfolded, exactly as ``model.eval()`` runs it."""
    with torch.random.fork_rng(devices=[]):  # speed does not depend on the weights; leave the caller's RNG alone
        torch.manual_seed(0)
        model = create_model(manifest["arch"], num_classes=manifest["num_classes"], shortcut=manifest.get("shortcut"))
    model = model.float().eval().to(device)

    def run(batch: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return model(batch.to(device)).float().cpu()

    return Variant(BASELINE_VARIANT, "eager PyTorch, FP32, BatchNorm unfolded", device.type, run, model if device.type == "cuda" else None)


def bundle_variant(loaded: Bundle) -> Variant:
    """The bundle through ``Bundle.predict`` (padding, splitting and host copies included)."""
    manifest = loaded.manifest
    predictor = loaded.predictor
    device = predictor.device.type
    batch = loaded.batch
    return Variant(
        f"{manifest['backend']}-{manifest['precision']}",
        f"the bundle's artifact ({manifest['artifacts']['model']}, {manifest['backend']}, {manifest['precision']}, target {manifest['target']})",
        device,
        loaded.predict,
        predictor.module if device == "cuda" else None,
        (batch.min, batch.max),
    )


def _runtime_variant(backend: Backend, path: Path, manifest: dict) -> Variant | None:
    """The bundle's model under ``backend`` (not the bundle's own), or None when it cannot read it."""
    predictor = backend.foreign_predictor(path, manifest)
    if predictor is None:
        return None
    runner = Bundle(path, manifest, backend, predictor)
    return Variant(
        f"{backend.name}-{manifest['precision']}-of-{manifest['backend']}",
        f"the bundle's {manifest['backend']} model run by {backend.display_name or backend.name} on the CPU",
        "cpu",
        runner.predict,
        None,
        (runner.batch.min, runner.batch.max),
    )


def runtime_makers(path: Path, manifest: dict) -> list[Callable[[], Variant | None]]:
    """Loaders of the bundle's model under every *other* installed CPU runtime (e.g. an ONNX Runtime
    bundle's ``model.onnx`` under OpenVINO), each runtime with its own thread pool, through the same
    padding and splitting as the bundle. Variants are named ``<runtime>-<precision>-of-<backend>``.

    Listing them loads nothing: a runtime says whether it reads the model only by loading it
    (``foreign_predictor``), so each loader returns None when it cannot, and callers leave that one out.
    """
    candidates = [name for name in list_backends() if name != manifest["backend"] and backend_availability(name)[0]]
    backends = [get_backend(name) for name in candidates]
    return [partial(_runtime_variant, backend, path, manifest) for backend in backends if "cpu" in backend.targets]
