"""A bundle opened for use: ``load`` checks it, ``Bundle`` reads its manifest and runs its artifact."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
from torch import nn

from ..backends import Backend, BatchSpec, Predictor, get_backend
from ..backends.base import device_call
from ..core.errors import CheckFailed, UsageError
from ..core.io import file_sha256
from ..data.presets import Preprocessing, eval_transform
from ..weights import load_weights
from .manifest import check_host, read_manifest, verify_files


class Bundle:
    """A loaded, verified bundle. ``predict`` runs it; everything else reads the manifest.

    ``backend`` is the ``Backend`` that built it; ``predictor`` the ``Predictor`` that backend loaded
    (``.device`` where it runs, ``.module`` the torch module it runs or None).
    """

    def __init__(self, path: Path, manifest: dict, backend: Backend, predictor: Predictor) -> None:
        self.path = Path(path)
        self.manifest = manifest
        self.backend = backend
        self.predictor = predictor

    # --- what the manifest says
    @property
    def arch(self) -> str:
        return self.manifest["arch"]

    @property
    def classes(self) -> list[str]:
        return list(self.manifest["classes"])

    @property
    def num_classes(self) -> int:
        return int(self.manifest["num_classes"])

    @property
    def preprocessing(self) -> Preprocessing:
        data = {k: v for k, v in self.manifest["preprocessing"].items() if k in Preprocessing.__dataclass_fields__}
        return Preprocessing.from_dict(data)

    def transform(self):
        """PIL image -> normalised CHW float tensor, exactly as the model expects."""
        return eval_transform(self.preprocessing)

    @property
    def precision(self) -> str:
        return self.manifest["precision"]

    @property
    def target(self) -> str:
        return self.manifest["target"]

    @property
    def batch(self) -> BatchSpec:
        return BatchSpec.from_dict(self.manifest["input"]["batch"])

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(self.manifest["input"]["shape"][1:])

    @property
    def reference(self) -> dict:
        return dict(self.manifest["reference"])

    @property
    def reference_weights(self) -> Path | None:
        """The FP32 reference weights file as recorded (None for random weights); may not exist here."""
        weights = self.manifest["reference"].get("weights")
        return Path(weights).expanduser() if weights else None

    @property
    def calibration(self) -> dict | None:
        return self.manifest.get("calibration")

    @property
    def quantization(self) -> dict | None:
        return self.manifest.get("quantization")

    def artifact(self, role: str = "model") -> Path:
        """Path of the artifact with ``role`` (``model``, ``calibration_cache``...)."""
        try:
            return self.path / self.manifest["artifacts"][role]
        except KeyError:
            raise UsageError(f"bundle {self.path} has no {role!r} artifact; it has: {', '.join(self.manifest['artifacts'])}") from None

    def load_reference_model(self) -> nn.Module:
        """The FP32 reference model, after checking the weights file against the recorded sha256."""
        ref = self.manifest["reference"]
        if ref.get("random_weights") or not ref.get("weights"):
            raise UsageError(f"bundle {self.path} was built from random weights (speed measurements only); it has no FP32 reference")
        path = self.reference_weights
        if not path.is_file():
            raise UsageError(f"the bundle's FP32 reference {path} is not on this host; copy it there or pass the weights")
        if ref.get("sha256") and file_sha256(path) != ref["sha256"]:
            raise CheckFailed(f"{path} is not the file the bundle was built from (sha256 differs)")
        return load_weights(path, self.arch, num_classes=self.num_classes).model

    # --- running it
    def predict(self, batch: torch.Tensor) -> torch.Tensor:
        """NCHW float32 batch of any size -> float32 logits ``[N, num_classes]`` on the CPU.

        Batches are split to at most ``batch.max`` and padded up to ``batch.min`` for the artifact.
        """
        return self._in_chunks(self._checked(batch), lambda chunk: self.predictor(chunk).float().cpu())

    def device_runner(self) -> Callable[[torch.Tensor], torch.Tensor] | None:
        """``predict`` for a batch already on the predictor's GPU, logits left there: the same splitting
        and padding and the artifact's own casts and layout changes, no host copy and no host sync (a
        CUDA graph can capture it). None when the predictor has no device entry (``device_call``)."""
        call = device_call(self.predictor)
        if call is None:
            return None
        return lambda batch: self._in_chunks(self._checked(batch), lambda chunk: call(chunk).float())

    def _checked(self, batch: torch.Tensor) -> torch.Tensor:
        if batch.dim() == 3:
            batch = batch.unsqueeze(0)
        if batch.dim() != 4 or tuple(batch.shape[1:]) != self.input_shape:
            raise UsageError(f"bundle {self.path} takes N x {' x '.join(map(str, self.input_shape))} batches, got {tuple(batch.shape)}")
        return batch.float().contiguous()

    def _in_chunks(self, batch: torch.Tensor, run: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """``run`` on chunks of at most ``batch.max`` images, each padded up to ``batch.min``; the logits joined."""
        spec = self.batch
        outputs = []
        for start in range(0, batch.shape[0], spec.max):
            chunk = batch[start : start + spec.max]
            count = chunk.shape[0]
            if count < spec.min:
                chunk = torch.cat([chunk, chunk[-1:].expand(spec.min - count, *chunk.shape[1:])])
            outputs.append(run(chunk)[:count])
        if not outputs:
            return torch.empty(0, self.num_classes, device=batch.device)
        return torch.cat(outputs)

    __call__ = predict

    def simulator(self) -> Predictor | None:
        """INT8 only: a CPU predictor fake-quantizing with the artifact's exact scales, or None."""
        return self.backend.simulator(self.path, self.manifest)

    def __repr__(self) -> str:
        return f"Bundle({str(self.path)!r}, {self.arch}, {self.backend.name}, {self.precision}, {self.target})"


def load(path: Path, device: str = "auto", verify: bool = True) -> Bundle:
    """Open the bundle at ``path``: check its schema version, file hashes and that this host can run it.

    ``device``: ``auto`` (the backend's choice for this host and bundle), ``cpu`` or ``cuda``.
    """
    path = Path(path).expanduser()
    manifest = read_manifest(path)
    if verify:
        verify_files(path, manifest)
    check_host(path, manifest)
    try:
        backend = get_backend(manifest["backend"])
    except UsageError as error:
        raise CheckFailed(f"bundle {path} needs the {manifest['backend']} backend: {error}") from None
    ok, reason = backend.available()
    if not ok:
        raise CheckFailed(f"bundle {path} needs the {backend.name} backend, which is not usable here: {reason}")
    predictor = backend.load(path, manifest, device)
    if verify:
        _verify_unchanged(path, manifest)
    return Bundle(path, manifest, backend, predictor)


def _verify_unchanged(path: Path, manifest: dict) -> None:
    """Check the files again once the backend has read them: a file replaced between the first check
    and the load (a copy still in progress, a concurrent rebuild) would otherwise run unverified."""
    try:
        verify_files(path, manifest)
    except CheckFailed as error:
        raise CheckFailed(f"bundle {path} changed while it was being loaded ({error}); load it again once it is complete") from None
