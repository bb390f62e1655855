"""``--backend`` resolved in one place (``resolve_backend``); for a CPU target ``auto`` builds with every
CPU runtime installed, times each and keeps the fastest.

Which runtime is fastest depends on the CPU (VNNI, AMX, core count), the model and the batch, so it is
measured rather than guessed: every registered backend that targets ``cpu``, is installed and accepts
the config builds its artifact in a private directory; each is loaded and timed at the opt batch on
this machine in alternating rounds (``core.timing``, the ``bench`` loop, so slow drifts hit all alike); the
fastest p50 wins and its files become the bundle. Every candidate's p50 and the reason are recorded
in the manifest (``backend_choice``) and logged. ``--backend NAME`` skips all this.

``AutoBackend`` is a ``Backend`` that stands for the winner once ``build`` has chosen it (its ``name``
becomes the winner's), so ``compile`` runs it like any other backend. The timer is injectable
(``Timer``): tests pass one that makes the choice deterministic.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Callable, NamedTuple

import torch
from torch import nn

from ..core.errors import UsageError
from ..core.timing import split, stats, time_interleaved, warm_up
from .base import Backend, BuildConfig, BuildResult, Predictor
from .registry import backend_availability, get_backend, list_backends

log = logging.getLogger(__name__)

# (candidate name -> its loaded predictor, batch) -> p50 ms of each candidate's run on ``batch``.
Timer = Callable[[dict[str, Predictor], torch.Tensor], dict[str, float]]
WARMUP = 3
ITERS = 30
ROUNDS = 5


def measure_p50(predictors: dict[str, Predictor], batch: torch.Tensor, warmup: int = WARMUP, iters: int = ITERS,
                rounds: int = ROUNDS) -> dict[str, float]:
    """p50 ms per predictor, host batch to host logits, rounds alternating the predictors (``bench``'s loop)."""
    warm_up(predictors, batch, lambda _name: warmup)
    wall, _ = time_interleaved(predictors, batch, split(iters, rounds))
    return {name: stats(samples)["p50"] for name, samples in wall.items()}


def cpu_candidates(config: BuildConfig) -> tuple[list[Backend], dict[str, str]]:
    """Backends that target ``cpu``, are installed and accept ``config``; and the others with why not."""
    candidates: list[Backend] = []
    skipped: dict[str, str] = {}
    for name in list_backends():
        ok, reason = backend_availability(name)
        if not ok:
            skipped[name] = reason
            continue
        backend = get_backend(name)
        try:
            backend.check_config(config)
        except UsageError as error:
            skipped[name] = str(error)
            continue
        candidates.append(backend)
    return candidates, skipped


def _view(backend: Backend, config: BuildConfig, result: BuildResult) -> dict:
    """The manifest fields a backend's ``load`` reads, for a candidate not yet in a bundle."""
    return {
        **result.manifest,
        "backend": backend.name,
        "precision": config.precision,
        "target": config.target,
        "artifacts": dict(result.artifacts),
        "input": {"name": config.input_name, "batch": config.batch.to_dict(), "shape": [config.batch.opt, *config.input_shape]},
        "output": {"name": config.output_name},
    }


class AutoBackend(Backend):
    """The fastest of ``candidates`` on this machine, chosen by ``build``; then it acts as that backend."""

    display_name = "auto"
    targets = ("cpu",)

    def __init__(self, candidates: list[Backend], skipped: dict[str, str] | None = None, timer: Timer = measure_p50) -> None:
        if not candidates:
            raise UsageError("no CPU runtime is installed that builds this; pip install -r requirements.txt")
        self.candidates = list(candidates)
        self.skipped = dict(skipped or {})
        self.timer = timer
        self.chosen: Backend | None = None
        self.name = "auto"
        self.precisions = tuple(dict.fromkeys(p for c in candidates for p in c.precisions))
        self.can_fuse = all(c.can_fuse for c in candidates)
        self.default_batch = candidates[0].default_batch

    def available(self) -> tuple[bool, str]:
        return True, f"measuring {', '.join(c.name for c in self.candidates)}"

    def check_config(self, config: BuildConfig) -> None:
        for candidate in self.candidates:
            candidate.check_config(config)

    def build(self, model: nn.Module, config: BuildConfig, out_dir: Path) -> BuildResult:
        """Build every candidate, time them at the opt batch, move the winner's files to ``out_dir``."""
        with tempfile.TemporaryDirectory(prefix="resnet-edge-auto-") as work:
            built: dict[str, tuple[Backend, BuildResult, Path]] = {}
            predictors: dict[str, Predictor] = {}
            for candidate in self.candidates:
                directory = Path(work) / candidate.name
                directory.mkdir()
                log.info(f"backend auto: building the {candidate.name} candidate")
                result = candidate.build(model, config, directory)
                built[candidate.name] = (candidate, result, directory)
                predictors[candidate.name] = candidate.load(directory, _view(candidate, config, result), "cpu")
            p50 = self.timer(predictors, config.example_input(config.batch.opt))
            winner_name = min(p50, key=p50.get)
            winner, result, directory = built[winner_name]
            for name in result.artifacts.values():
                shutil.move(str(directory / name), str(Path(out_dir) / name))
        self.chosen = winner
        self.name, self.display_name, self.can_fuse = winner.name, winner.display_name, winner.can_fuse
        choice = self._choice(p50, winner_name, config)
        log.info(f"backend auto -> {winner_name} ({choice['reason']})")
        return BuildResult(dict(result.artifacts), {**result.manifest, "backend_choice": choice})

    def _choice(self, p50: dict[str, float], winner: str, config: BuildConfig) -> dict:
        """The manifest's ``backend_choice``: every candidate's p50, the winner and why."""
        ranked = sorted(p50, key=p50.get)
        runner_up = f", {p50[ranked[1]] / p50[winner]:.2f}x faster than {ranked[1]}" if len(ranked) > 1 else ""
        return {
            "requested": "auto",
            "chosen": winner,
            "reason": f"fastest p50 at batch {config.batch.opt} on this machine: {p50[winner]:.3f} ms{runner_up}",
            "batch": config.batch.opt,
            "threads": torch.get_num_threads(),
            "candidates": {name: {"p50_ms": round(p50[name], 4)} for name in ranked},
            "skipped": self.skipped,
        }

    def _delegate(self) -> Backend:
        if self.chosen is None:
            raise RuntimeError("AutoBackend used before build() chose a backend")
        return self.chosen

    def load(self, bundle_dir: Path, manifest: dict, device: str = "auto") -> Predictor:
        return self._delegate().load(bundle_dir, manifest, device)

    def simulator(self, bundle_dir: Path, manifest: dict) -> Predictor | None:
        return self._delegate().simulator(bundle_dir, manifest)

    def foreign_predictor(self, bundle_dir: Path, manifest: dict) -> Predictor | None:
        return self._delegate().foreign_predictor(bundle_dir, manifest)


class Resolution(NamedTuple):
    """The backend ``--backend`` names, a sentence saying which and why, and whether it is the measured
    CPU choice (then the build targets ``cpu``, on the CPU, unfused unless ``--fused``)."""

    backend: Backend
    why: str
    measured_cpu: bool = False


def resolve_backend(requested: str, target: str | None, cpu_config: Callable[[], BuildConfig]) -> Resolution:
    """``--backend`` for ``--target`` (None: not given), in one call.

    A named backend must be usable here. ``auto``: the CPU runtimes measured on this machine
    (``auto_cpu_backend``, candidates checked against ``cpu_config()``) for ``--target cpu``, or with no
    target when TensorRT is not usable; else TensorRT; a GPU target without TensorRT gets ONNX Runtime.
    """
    if requested != "auto":
        backend = get_backend(requested)
        ok, reason = backend.available()
        if not ok:
            raise UsageError(f"the {requested} backend is not usable here: {reason}")
        return Resolution(backend, f"backend {requested} ({reason})")
    if target != "cpu":
        trt_ok, trt_reason = backend_availability("tensorrt")
        if trt_ok:
            return Resolution(get_backend("tensorrt"), f"backend auto -> tensorrt ({trt_reason})")
        if target is not None:
            ort_ok, ort_reason = backend_availability("onnxruntime")
            if not ort_ok:
                raise UsageError(f"no backend is usable: tensorrt: {trt_reason}; onnxruntime: {ort_reason}")
            why = trt_reason.split(";")[0]
            return Resolution(get_backend("onnxruntime"), f"backend auto -> onnxruntime (tensorrt not usable: {why})")
    return Resolution(*auto_cpu_backend(cpu_config()), measured_cpu=True)


def auto_cpu_backend(config: BuildConfig, timer: Timer = measure_p50) -> tuple[Backend, str]:
    """The backend for ``--backend auto`` on a CPU target, and a sentence saying which and why.

    One candidate: that backend. Several: an ``AutoBackend`` that measures them while building.
    """
    candidates, skipped = cpu_candidates(config)
    if not candidates:
        reasons = "; ".join(f"{name}: {why}" for name, why in skipped.items())
        raise UsageError(f"no installed CPU runtime builds {config.precision} here ({reasons})")
    if len(candidates) == 1:
        only = candidates[0]
        return only, f"backend auto -> {only.name} (the only CPU runtime here that builds {config.precision})"
    names = ", ".join(c.name for c in candidates)
    return AutoBackend(candidates, skipped, timer), f"backend auto: timing {names} at batch {config.batch.opt} on this machine"


__all__ = ["AutoBackend", "Resolution", "Timer", "auto_cpu_backend", "cpu_candidates", "measure_p50", "resolve_backend"]

