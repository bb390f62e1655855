"""The backend contract: what ``compile`` hands a backend, and what a backend hands back.

See ``resnet_edge/backends/__init__.py`` for the rules in prose; this module holds the types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol, runtime_checkable

import torch
from torch import nn

from ..core.defaults import TARGETS
from ..core.errors import UsageError
from ..quantize.inputs import CalibrationData, QuantOptions


@runtime_checkable
class Predictor(Protocol):
    """What ``Backend.load`` returns: NCHW float32 batch (on the CPU) -> float32 logits on the CPU.

    ``device`` is where the artifact runs (``cpu`` or ``cuda[:N]``); ``module`` is the torch module it
    runs when there is one (TorchScript, Torch-TensorRT), else None: diagnose hooks its blocks. Callers
    never look further inside a predictor.

    Optional hook ``on_device(batch) -> logits``: the same computation on a float32 NCHW batch already on
    ``device``, logits left there, no host copy and no host sync (so a CUDA graph can capture it). A
    predictor without it gets ``device_call``'s default.
    """

    device: torch.device
    module: nn.Module | None

    def __call__(self, batch: torch.Tensor) -> torch.Tensor: ...


def device_call(predictor: Predictor) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """The predictor's device-resident entry (``bench``'s device-resident latency): its ``on_device``
    hook if it has one; else, on a CUDA device, its ``.module`` (the TorchScript and Torch-TensorRT
    modules take the float32 batch and cast inside, as the predictor's own call does); else None (a
    raw TensorRT engine, a CPU runtime)."""
    own = getattr(predictor, "on_device", None)
    if own is not None:
        return own
    if predictor.module is None or predictor.device.type != "cuda":
        return None
    return predictor.module


@dataclass
class CallablePredictor:
    """A ``Predictor`` made of a function, the device it runs on and the module it runs (if any)."""

    run: Callable[[torch.Tensor], torch.Tensor]
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    module: nn.Module | None = None

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        return self.run(batch)


@dataclass(frozen=True)
class BackendOptions:
    """Options of one backend; a backend subclasses this with its own fields (all with defaults)."""


@dataclass(frozen=True)
class BatchSpec:
    """Batch sizes an artifact accepts: ``min <= opt <= max``; all equal for a static batch."""

    min: int = 1
    opt: int = 1
    max: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.min <= self.opt <= self.max:
            raise UsageError(f"batch sizes must satisfy 1 <= MIN <= OPT <= MAX, got {self.min}:{self.opt}:{self.max}")

    @property
    def static(self) -> bool:
        return self.min == self.max

    @classmethod
    def fixed(cls, size: int) -> "BatchSpec":
        return cls(size, size, size)

    @classmethod
    def parse(cls, text: str) -> "BatchSpec":
        """``MIN:OPT:MAX`` (as ``--dynamic-batch`` takes it)."""
        parts = text.split(":")
        if len(parts) != 3 or not all(part.strip().isdigit() for part in parts):
            raise UsageError(f"--dynamic-batch {text!r}: expected MIN:OPT:MAX, e.g. 1:8:32")
        return cls(*(int(part) for part in parts))

    def to_dict(self) -> dict:
        return {"min": self.min, "opt": self.opt, "max": self.max}

    @classmethod
    def from_dict(cls, data: dict) -> "BatchSpec":
        return cls(int(data["min"]), int(data["opt"]), int(data["max"]))


def check_ranges_support(backend: "Backend", config: "BuildConfig") -> None:
    """Refuse stored ranges (``QuantOptions.ranges_file``) for a backend that cannot build from them, or for
    a build that is not INT8."""
    if config.quantization.ranges_file is None:
        return
    if config.precision != "int8":
        raise UsageError(f"stored calibration ranges are for INT8 builds, not {config.precision}")
    if not backend.takes_ranges:
        raise UsageError(f"the {backend.name} backend cannot build INT8 from stored ONNX calibration ranges; "
                         f"choose a backend that can (onnxruntime, openvino) or compile with calibration images")


@dataclass
class BuildConfig:
    """Everything a backend's ``build`` needs besides the model; filled in and checked by ``compile``."""

    arch: str
    precision: str  # one of core.defaults.PRECISIONS: "fp32" | "fp16" | "bf16" | "int8"
    target: str  # one of TARGETS
    input_shape: tuple[int, int, int]  # C, H, W
    batch: BatchSpec = field(default_factory=BatchSpec)
    input_name: str = "input"
    output_name: str = "logits"
    calibration: CalibrationData | None = None  # INT8 only, never None for INT8
    fused: bool = False  # swap blocks for resnet_edge:: fused ops (backends that can run them)
    device: str = "cpu"  # torch device for building ("cpu" or "cuda")
    quantization: QuantOptions = field(default_factory=QuantOptions)  # INT8 only
    options: BackendOptions = field(default_factory=BackendOptions)  # the backend's own ``options_type``

    def example_input(self, batch: int | None = None) -> torch.Tensor:
        """A deterministic NCHW float32 batch of the input shape (for export and tracing)."""
        generator = torch.Generator().manual_seed(0)
        return torch.randn((batch or self.batch.opt, *self.input_shape), generator=generator)


@dataclass
class BuildResult:
    """What ``build`` wrote: ``artifacts`` maps role -> file name in the bundle (role ``model`` required);
    ``manifest`` holds extra top-level manifest fields (``quantization``, ``requires``, a backend's own
    section such as ``onnx``...), merged into ``manifest.json`` by ``compile``."""

    artifacts: dict[str, str]
    manifest: dict = field(default_factory=dict)


class Backend:
    """Base class of a backend. Subclasses set ``name``/``precisions``/``targets`` and implement
    ``available``, ``build`` and ``load``; the rest has working defaults.
    """

    name: str = ""
    display_name: str = ""  # as users know it: "TensorRT", "ONNX Runtime"
    precisions: tuple[str, ...] = ()
    targets: tuple[str, ...] = TARGETS
    can_fuse: bool = False  # whether the artifact can hold resnet_edge:: fused ops
    takes_ranges: bool = False  # whether INT8 builds honour ``QuantOptions.ranges_file`` (ONNX tensor ranges)
    options_type: type[BackendOptions] = BackendOptions  # this backend's own options
    default_batch: BatchSpec = BatchSpec(1, 1, 64)  # when neither --batch nor --dynamic-batch is given

    def default_fused(self) -> bool:
        """Whether to fuse when neither --fused nor --no-fused is given."""
        return False

    def available(self) -> tuple[bool, str]:
        """(usable on this host, a reason in words either way)."""
        raise NotImplementedError

    def check_config(self, config: BuildConfig) -> None:
        """Refuse, with a ``UsageError`` that says what to do, a config this backend cannot build here.

        Called by ``compile`` before any work is done. The default checks precision and target.
        """
        if config.precision not in self.precisions:
            raise UsageError(
                f"the {self.name} backend does not build {config.precision}; choose one of: {', '.join(self.precisions)}"
            )
        if config.target not in self.targets:
            raise UsageError(f"the {self.name} backend does not build for --target {config.target}; choose one of: {', '.join(self.targets)}")
        if config.fused and not self.can_fuse:
            raise UsageError(f"the {self.name} backend cannot hold the fused resnet_edge ops; pass --no-fused")
        check_ranges_support(self, config)

    def build(self, model: nn.Module, config: BuildConfig, out_dir: Path) -> BuildResult:
        """Compile ``model`` (FP32, eval mode, on the CPU, unfused) into files under ``out_dir``."""
        raise NotImplementedError

    def load(self, bundle_dir: Path, manifest: dict, device: str = "auto") -> Predictor:
        """A predictor for the artifact(s) a previous ``build`` wrote to ``bundle_dir``."""
        raise NotImplementedError

    def options_of(self, config: BuildConfig) -> BackendOptions:
        """``config.options`` as this backend's ``options_type``: its defaults when none were given.

        A ``TypeError`` for another backend's options (a programming error, not a user's).
        """
        options = config.options
        if type(options) is BackendOptions:
            return self.options_type()
        if not isinstance(options, self.options_type):
            raise TypeError(f"the {self.name} backend takes {self.options_type.__name__}, not {type(options).__name__}")
        return options

    def simulator(self, bundle_dir: Path, manifest: dict) -> Predictor | None:
        """For INT8: a CPU predictor that fake-quantizes with exactly the scales of the artifact, so a
        host without the target hardware sees the accuracy the engine will have. None when not offered."""
        return None

    def block_probe(self, bundle_dir: Path, manifest: dict, blocks: list[str], device: str = "auto",
                    simulated: bool = False, reference: nn.Module | None = None) -> Callable[[torch.Tensor], dict[str, torch.Tensor]] | None:
        """For ``diagnose``: a callable NCHW float32 CPU batch -> ``{block: float32 CPU tensor}``, the output
        of each residual block (``blocks``: module names such as ``layer2.1``) as the artifact computes it
        (``simulated``: as ``simulator`` computes it). None when the backend cannot expose them.

        ``reference``: the bundle's FP32 reference model (eval, CPU), for a backend that must rebuild its
        artifact with the block outputs exposed (TensorRT); backends that read the saved artifact ignore it."""
        return None

    def block_probe_reading(self, manifest: dict, blocks: list[str]) -> str:
        """How ``block_probe`` reads the artifact's block outputs, in one sentence for the ``diagnose`` report."""
        return f"the bundle's own artifact with the {len(blocks)} block outputs added as outputs of its graph, nothing else"

    def foreign_predictor(self, bundle_dir: Path, manifest: dict) -> Predictor | None:
        """A CPU predictor running *another* backend's bundle artifact in this runtime (e.g. that bundle's
        ONNX model under OpenVINO), for ``bench`` to compare runtimes on the same model. None when this
        runtime cannot read it (the default)."""
        return None

    def profile_blocks(self, bundle_dir: Path, manifest: dict, blocks: list[str], batch: torch.Tensor, iters: int,
                       device: str = "auto") -> dict[str, float] | None:
        """For ``bench --profile``: mean milliseconds per run of each row (a residual block such as
        ``layer2.1`` from ``blocks``, or a top-level module such as ``conv1``/``fc``), from this runtime's
        own profiler over ``iters`` runs of ``batch``; in execution order. None when not supported."""
        return None
