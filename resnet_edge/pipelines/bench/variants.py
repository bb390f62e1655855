"""The things ``bench`` times: the bundle as an application calls it, and the eager FP32 baseline."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from ...backends import Backend, BatchSpec, backend_availability, get_backend, list_backends
from ...bundle import Bundle
from ...core.process_timing import ProcessRunner
from ...models import create_model
from .options import BASELINE_VARIANT


@dataclass
class DeviceEntry:
    """A variant with its input already on the GPU and its output left there (the device-resident
    figure): ``prepare`` turns a host batch into that input, untimed; ``run`` is what is timed."""

    prepare: Callable[[torch.Tensor], torch.Tensor]
    run: Callable[[torch.Tensor], torch.Tensor]


@dataclass
class Variant:
    """One thing to time: ``run`` takes a host NCHW float32 batch and returns host logits."""

    name: str
    description: str
    device: str  # "cpu" or "cuda": the device type it runs on
    run: Callable[[torch.Tensor], torch.Tensor]
    batch_range: tuple[int, int] | None = None  # (min, max) the artifact accepts per call
    resident: DeviceEntry | None = None  # on CUDA: the same work without the host copies (and for --cuda-graphs)


def example_batch(size: int, shape: tuple[int, ...]) -> torch.Tensor:
    """A deterministic random-normal float32 batch of ``size`` images of ``shape`` (C, H, W)."""
    generator = torch.Generator().manual_seed(size)
    return torch.randn((size, *shape), generator=generator)


def inference(call: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[torch.Tensor], torch.Tensor]:
    """``call`` under ``torch.inference_mode`` (no autograd bookkeeping in what is timed)."""

    def run(batch: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return call(batch)

    return run


def eager_variant(manifest: dict, device: torch.device) -> Variant:
    """Eager FP32 PyTorch of the bundle's arch, BatchNorm unfolded, exactly as ``model.eval()`` runs it."""
    with torch.random.fork_rng(devices=[]):  # speed does not depend on the weights; leave the caller's RNG alone
        torch.manual_seed(0)
        model = create_model(manifest["arch"], num_classes=manifest["num_classes"], shortcut=manifest.get("shortcut"))
    model = model.float().eval().to(device)
    on_cuda = device.type == "cuda"
    return Variant(BASELINE_VARIANT, "eager PyTorch, FP32, BatchNorm unfolded", device.type, inference(lambda batch: model(batch.to(device)).float().cpu()),
                   resident=DeviceEntry(lambda batch: batch.to(device), inference(model)) if on_cuda else None)


def bundle_variant(loaded: Bundle) -> Variant:
    """The bundle through ``Bundle.predict`` (padding, splitting and host copies included); on CUDA its
    device-resident entry is ``Bundle.device_runner`` (the same padding and the artifact's own casts and
    layout changes, no host copy), when the backend's predictor has one."""
    manifest = loaded.manifest
    predictor = loaded.predictor
    device = predictor.device.type
    batch = loaded.batch
    on_device = loaded.device_runner() if device == "cuda" else None
    return Variant(
        f"{manifest['backend']}-{manifest['precision']}",
        f"the bundle's artifact ({manifest['artifacts']['model']}, {manifest['backend']}, {manifest['precision']}, target {manifest['target']})",
        device,
        loaded.predict,
        (batch.min, batch.max),
        DeviceEntry(lambda host: host.to(predictor.device), inference(on_device)) if on_device is not None else None,
    )


def _runtime_variant(backend: Backend, manifest: dict, run: Callable[[torch.Tensor], torch.Tensor]) -> Variant:
    """The variant that runs the bundle's model under ``backend`` (not the bundle's own) through ``run``."""
    batch = BatchSpec.from_dict(manifest["input"]["batch"])
    return Variant(
        f"{backend.name}-{manifest['precision']}-of-{manifest['backend']}",
        f"the bundle's {manifest['backend']} model run by {backend.display_name or backend.name} on the CPU, in its own process",
        "cpu",
        run,
        (batch.min, batch.max),
    )


def _foreign_run(backend: Backend, path: Path, manifest: dict) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """``Bundle.predict`` of the bundle's model under ``backend``, or None when that runtime cannot read it."""
    predictor = backend.foreign_predictor(path, manifest)
    return None if predictor is None else Bundle(path, manifest, backend, predictor).predict


def foreign_runner(recipe: dict) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """What a worker process runs (``core.process_timing``): the bundle's model under ``recipe["backend"]``."""
    return _foreign_run(get_backend(recipe["backend"]), Path(recipe["path"]), recipe["manifest"])


@dataclass(frozen=True)
class ForeignRuntime:
    """The bundle's model under another installed CPU runtime (e.g. an ONNX Runtime bundle's
    ``model.onnx`` under OpenVINO), through the same padding and splitting as the bundle, named
    ``<runtime>-<precision>-of-<backend>``. ``load`` builds it in this process (the memory phase,
    one variant at a time); ``start`` builds it in a process of its own for the timing, so no runtime's
    thread pool competes with another's. A runtime says whether it reads the model only by loading it
    (``foreign_predictor``): ``load`` then returns None, and ``start``'s runner reports ``unavailable``."""

    backend: str
    path: Path
    manifest: dict

    def load(self) -> Variant | None:
        backend = get_backend(self.backend)
        run = _foreign_run(backend, self.path, self.manifest)
        return None if run is None else _runtime_variant(backend, self.manifest, run)

    def start(self, threads: int) -> tuple[Variant, ProcessRunner]:
        """Its variant, run by a ``ProcessRunner`` that is building it now (``wait_ready`` says how that went)."""
        runner = ProcessRunner(foreign_runner, {"backend": self.backend, "path": str(self.path), "manifest": self.manifest}, threads)
        return _runtime_variant(get_backend(self.backend), self.manifest, runner), runner


def foreign_runtimes(path: Path, manifest: dict) -> list[ForeignRuntime]:
    """Every *other* installed runtime that runs on the CPU; listing them loads nothing."""
    candidates = [name for name in list_backends() if name != manifest["backend"] and backend_availability(name)[0]]
    return [ForeignRuntime(name, Path(path), manifest) for name in candidates if "cpu" in get_backend(name).targets]
