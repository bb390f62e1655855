"""The files a TensorRT build writes, each loaded back and compared before the bundle is written,
and the predictors that run them.

``model.ts`` (``torch_tensorrt.save(..., output_format="torchscript")``) for libtorch C++ apps
linking ``libtorchtrt_runtime``; ``model.pt2`` (``output_format="exported_program"``) for Python;
``model.engine``, the plain TensorRT plan from ``convert_exported_program_to_serialized_trt_engine``
(or, for the DLA, from TensorRT's builder: ``dla``), for DeepStream / pure TensorRT apps
(``runner.EngineRunner`` runs it from Python).

The exported program is saved with ``retrace=False``. Since torch-tensorrt 2.10 ``save`` defaults to
``retrace=True``, which re-exports the compiled module with ``torch.export`` from the example batch and
no ``dynamic_shapes``: the saved program's guards then pin the batch to the example's size (``Guard
failed: input.size()[0] == 8`` for any other batch). ``retrace=False`` serialises the graph as compiled,
symbolic batch included, on every release (2.8 and 2.9 defaulted to it). Each format is checked at the
batch's ``min``, ``opt`` and ``max``, not only at the example the build reloads with. Bundles written
before the rename name their program ``model.ep`` in ``artifacts`` and load the same way.
"""

from __future__ import annotations

import inspect
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ...core.errors import CheckFailed
from ..base import BatchSpec, BuildConfig, CallablePredictor, Predictor
from . import api
from .logcapture import capture_tensorrt_log
from .placement import placement_of
from .runner import EngineRunner

log = logging.getLogger(__name__)

TORCHSCRIPT_FILE = "model.ts"
EXPORTED_PROGRAM_FILE = "model.pt2"  # torch 2.14 warns on ".ep" and loads it through a fallback
LEGACY_EXPORTED_PROGRAM_FILE = "model.ep"  # bundles from before: their manifest's artifacts name it
ENGINE_FILE = "model.engine"
FORMATS = {"torchscript": TORCHSCRIPT_FILE, "exported_program": EXPORTED_PROGRAM_FILE, "engine": ENGINE_FILE}
DEFAULT_FORMATS = ("torchscript", "exported_program", "engine")
SAVE_CHECK_TOLERANCE = 1e-3


@dataclass
class CompileJob:
    """What was compiled and how: the saving steps rebuild or re-save from it."""

    torch_tensorrt: object  # the imported module
    program: torch.export.ExportedProgram
    inputs: list
    kwargs: dict
    compiled: nn.Module
    example: torch.Tensor  # the export / trace example batch
    checks: list[tuple[torch.Tensor, torch.Tensor]]  # (batch, compiled logits): the example, then min/opt/max

    @property
    def expected(self) -> torch.Tensor:
        """The compiled module's logits for ``example``."""
        return self.checks[0][1]


def check_batch_sizes(batch: BatchSpec) -> list[int]:
    """The batch sizes every saved format is run at: ``min``, ``opt`` and ``max``, once each."""
    return sorted({batch.min, batch.opt, batch.max})


def check_batches(run, config: BuildConfig, example: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(batch, float logits of ``run``): the example first, then each of ``check_batch_sizes`` it is not."""
    inputs = [example] + [config.example_input(n).to(example.device) for n in check_batch_sizes(config.batch) if n != example.shape[0]]
    with torch.no_grad():
        return [(batch, run(batch).float()) for batch in inputs]


@dataclass
class SavedFormats:
    """Artifact roles -> files, the reload checks, and what the raw engine reported."""

    artifacts: dict[str, str] = field(default_factory=dict)
    checks: dict[str, float] = field(default_factory=dict)
    engine_io: dict | None = None
    placement: dict | None = None


def max_rel_diff(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return float((actual.float() - expected.float()).abs().max() / expected.float().abs().max().clamp(min=1e-12))


def engine_tolerance(precision: str) -> float:
    # A reloaded module runs the very same engine; the raw engine is a second build whose kernel
    # choices may differ, which is visible in FP16/INT8 rounding.
    return SAVE_CHECK_TOLERANCE if precision == "fp32" else 0.05


def compare_at_each_batch(run, checks: list[tuple[torch.Tensor, torch.Tensor]], what: str, tolerance: float) -> float:
    """Run ``run`` on every checked batch: the largest relative difference, or ``CheckFailed`` naming the batch."""
    worst = 0.0
    for batch, expected in checks:
        try:
            with torch.no_grad():
                actual = run(batch)
        except Exception as error:  # a guard pinned to another batch size, an engine refusing the shape
            text = str(error).strip()
            first = text.splitlines()[0][:300] if text else type(error).__name__
            raise CheckFailed(f"the saved {what} fails at batch {batch.shape[0]}: {first}") from None
        diff = max_rel_diff(actual.to(expected.device), expected)
        if diff > tolerance:
            raise CheckFailed(f"the saved {what} disagrees with the compiled module at batch {batch.shape[0]} (max relative diff {diff:.3g})")
        worst = max(worst, diff)
    return round(worst, 6)


def save_keywords(save, fmt: str, example: torch.Tensor) -> dict:
    """``torch_tensorrt.save`` keywords for ``fmt``: TorchScript traces ``example``; the exported program
    is saved as compiled (``retrace=False`` and no example, which it would only warn about)."""
    if fmt == "torchscript":
        return {"output_format": fmt, "arg_inputs": [example]}
    kwargs: dict = {"output_format": fmt}
    if "retrace" in inspect.signature(save).parameters:  # 2.8 .. 2.14 all have it
        kwargs["retrace"] = False
    return kwargs


def _save_module(job: CompileJob, fmt: str, out_dir: Path, saved: SavedFormats) -> None:
    """``torchscript`` or ``exported_program`` through ``torch_tensorrt.save``, reloaded and compared."""
    path = out_dir / FORMATS[fmt]
    job.torch_tensorrt.save(job.compiled, str(path), **save_keywords(job.torch_tensorrt.save, fmt, job.example))
    if fmt == "torchscript":
        reloaded = torch.jit.load(str(path), map_location=job.example.device).eval()
        saved.artifacts["model"] = TORCHSCRIPT_FILE
    else:
        reloaded = job.torch_tensorrt.load(str(path)).module()
        saved.artifacts["exported_program"] = EXPORTED_PROGRAM_FILE
        saved.artifacts.setdefault("model", EXPORTED_PROGRAM_FILE)
    saved.checks[fmt] = compare_at_each_batch(reloaded, job.checks, f"{fmt} module", SAVE_CHECK_TOLERANCE)


def _serialize_engine(job: CompileJob, config: BuildConfig, path: Path) -> None:
    """Build the raw TensorRT plan into ``path`` with torch-tensorrt's converter."""
    convert = job.torch_tensorrt.dynamo.convert_exported_program_to_serialized_trt_engine
    engine_kwargs = dict(job.kwargs)
    if "output_binding_names" in inspect.signature(convert).parameters:
        # The *_binding_names keywords first appear in torch-tensorrt 2.14; on 2.8-2.13 the engine keeps
        # TensorRT's default names, so every reader takes them from the manifest's ``engine_io``.
        # Shaped like the program's args (a 1-tuple) and output (one tensor: a plain string).
        engine_kwargs.update(arg_input_binding_names=(config.input_name,), output_binding_names=config.output_name)
    api.drop_optional_keywords(engine_kwargs, convert)
    api.check_keywords(convert, engine_kwargs, "convert_exported_program_to_serialized_trt_engine")
    log.info("serializing the raw TensorRT engine")
    with capture_tensorrt_log(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        serialized = convert(job.program, arg_inputs=job.inputs, **engine_kwargs)
    path.write_bytes(bytes(serialized))


def engine_io(runner: EngineRunner) -> dict:
    """The manifest's ``engine_io``: the engine's own binding names (not necessarily ``input``/``logits``),
    dtypes and batch range, as TensorRT reports them."""
    return {
        "input": runner.input_name,
        "output": runner.output_name,
        "input_dtype": str(runner.input_dtype),
        "output_dtype": str(runner.output_dtype),
        "batch": {"min": int(runner.min_batch), "max": int(runner.max_batch)},
    }


def check_engine(path: Path, checks: list[tuple[torch.Tensor, torch.Tensor]], tolerance: float, saved: SavedFormats, dla_core: int | None = None) -> None:
    """Run the raw engine with ``EngineRunner`` at every checked batch; record ``engine_io`` and the artifact."""
    with EngineRunner(path, dla_core=dla_core) as runner:
        saved.engine_io = engine_io(runner)
        if dla_core is None:  # the DLA build takes its placement from the inspector itself (dla.py)
            saved.placement = saved.placement or placement_of(runner.layer_information())

        def run(batch: torch.Tensor) -> torch.Tensor:
            return torch.from_numpy(runner(batch.float().cpu().numpy()))

        saved.checks["engine"] = compare_at_each_batch(run, checks, "raw engine", tolerance)
    saved.artifacts["engine"] = ENGINE_FILE
    saved.artifacts.setdefault("model", ENGINE_FILE)


def _save_engine(job: CompileJob, config: BuildConfig, out_dir: Path, saved: SavedFormats) -> None:
    """The raw engine, built, then run at every checked batch and compared with the compiled module."""
    path = out_dir / ENGINE_FILE
    _serialize_engine(job, config, path)
    check_engine(path, job.checks, engine_tolerance(config.precision), saved)


def save_formats(job: CompileJob, config: BuildConfig, formats: tuple[str, ...], out_dir: Path, placement: dict | None) -> SavedFormats:
    """Write each of ``formats`` under ``out_dir``, in the fixed order torchscript, exported_program, engine."""
    saved = SavedFormats(placement=placement)
    for fmt in ("torchscript", "exported_program"):
        if fmt in formats:
            _save_module(job, fmt, Path(out_dir), saved)
    if "engine" in formats:
        _save_engine(job, config, Path(out_dir), saved)
    return saved


class EnginePredictor:
    """A ``Predictor`` running a raw ``model.engine`` with ``EngineRunner`` (no torch module inside)."""

    module: nn.Module | None = None

    def __init__(self, runner: EngineRunner, device: torch.device) -> None:
        self.runner = runner
        self.device = device

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.runner(batch.float().cpu().numpy()))


def load_predictor(torch_tensorrt, bundle_dir: Path, manifest: dict, cuda: torch.device) -> Predictor:
    """The predictor of the best format the bundle has: the exported program (``model.pt2``, or an
    older bundle's ``model.ep``), TorchScript, or the raw engine (its binding names and DLA core from
    the manifest's ``tensorrt`` section).

    ``torch_tensorrt`` is the imported module (importing it also registers the engine class TorchScript
    needs); ``None`` is accepted for an engine-only bundle, which needs TensorRT's bindings alone.
    """
    artifacts = manifest["artifacts"]
    if "exported_program" in artifacts:
        module = torch_tensorrt.load(str(bundle_dir / artifacts["exported_program"])).module()
    elif artifacts["model"].endswith(".ts"):
        module = torch.jit.load(str(bundle_dir / artifacts["model"]), map_location=cuda).eval()
    else:
        section = manifest.get("tensorrt") or {}
        dla = section.get("dla") or {}
        runner = EngineRunner(bundle_dir / artifacts["model"], device=cuda.index or 0, dla_core=dla.get("core"), io_names=section.get("engine_io"))
        return EnginePredictor(runner, cuda)

    def predict(batch: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return module(batch.to(cuda, torch.float32)).float().cpu()

    return CallablePredictor(predict, cuda, module)
