"""The files a TensorRT build writes, each loaded back and compared before the bundle is written,
and the predictors that run them.

``model.ts`` (``torch_tensorrt.save(..., output_format="torchscript")``) for libtorch C++ apps linking
``libtorchtrt_runtime``; ``model.ep`` (``output_format="exported_program"``) for Python; ``model.engine``,
the plain TensorRT plan from ``convert_exported_program_to_serialized_trt_engine``, for DeepStream /
pure TensorRT apps (``runner.EngineRunner`` runs it from Python).
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
from ..base import BuildConfig, CallablePredictor, Predictor
from . import api
from .logcapture import capture_tensorrt_log, layer_placement
from .runner import EngineRunner

log = logging.getLogger(__name__)

TORCHSCRIPT_FILE = "model.ts"
EXPORTED_PROGRAM_FILE = "model.ep"
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
    example: torch.Tensor
    expected: torch.Tensor  # the compiled module's logits for ``example``


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


def _compare(module, job: CompileJob, what: str) -> float:
    with torch.no_grad():
        diff = max_rel_diff(module(job.example), job.expected)
    if diff > SAVE_CHECK_TOLERANCE:
        raise CheckFailed(f"the saved {what} module disagrees with the compiled one after reloading (max relative diff {diff:.3g})")
    return round(diff, 6)


def _save_module(job: CompileJob, fmt: str, out_dir: Path, saved: SavedFormats) -> None:
    """``torchscript`` or ``exported_program`` through ``torch_tensorrt.save``, reloaded and compared."""
    path = out_dir / FORMATS[fmt]
    job.torch_tensorrt.save(job.compiled, str(path), output_format=fmt, arg_inputs=[job.example])
    if fmt == "torchscript":
        reloaded = torch.jit.load(str(path), map_location=job.example.device).eval()
        saved.artifacts["model"] = TORCHSCRIPT_FILE
    else:
        reloaded = job.torch_tensorrt.load(str(path)).module()
        saved.artifacts["exported_program"] = EXPORTED_PROGRAM_FILE
        saved.artifacts.setdefault("model", EXPORTED_PROGRAM_FILE)
    saved.checks[fmt] = _compare(reloaded, job, fmt)


def _serialize_engine(job: CompileJob, config: BuildConfig, path: Path) -> dict | None:
    """Build the raw TensorRT plan into ``path``; the placement report of its builder log."""
    convert = job.torch_tensorrt.dynamo.convert_exported_program_to_serialized_trt_engine
    engine_kwargs = dict(job.kwargs)
    if "output_binding_names" in inspect.signature(convert).parameters:  # torch-tensorrt >= 2.13
        # Shaped like the program's args (a 1-tuple) and output (one tensor: a plain string).
        engine_kwargs.update(arg_input_binding_names=(config.input_name,), output_binding_names=config.output_name)
    api.check_keywords(convert, engine_kwargs, "convert_exported_program_to_serialized_trt_engine")
    log.info("serializing the raw TensorRT engine")
    with capture_tensorrt_log() as engine_log, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        serialized = convert(job.program, arg_inputs=job.inputs, **engine_kwargs)
    path.write_bytes(bytes(serialized))
    return layer_placement(engine_log.lines)


def _save_engine(job: CompileJob, config: BuildConfig, out_dir: Path, saved: SavedFormats) -> None:
    """The raw engine, run once with ``EngineRunner`` and compared with the compiled module."""
    path = out_dir / ENGINE_FILE
    saved.placement = saved.placement or _serialize_engine(job, config, path)
    with EngineRunner(path) as runner:
        saved.engine_io = {
            "input": runner.input_name,
            "output": runner.output_name,
            "input_dtype": str(runner.input_dtype),
            "output_dtype": str(runner.output_dtype),
            "batch": {"min": int(runner.min_batch), "max": int(runner.max_batch)},
        }
        logits = torch.from_numpy(runner(job.example.cpu().numpy())).to(job.example.device)
    saved.checks["engine"] = round(max_rel_diff(logits, job.expected), 6)
    if saved.checks["engine"] > engine_tolerance(config.precision):
        raise CheckFailed(f"the raw engine disagrees with the compiled module (max relative diff {saved.checks['engine']})")
    saved.artifacts["engine"] = ENGINE_FILE
    saved.artifacts.setdefault("model", ENGINE_FILE)


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


def load_predictor(torch_tensorrt, bundle_dir: Path, artifacts: dict, cuda: torch.device) -> Predictor:
    """The predictor of the best format the bundle has: the exported program, TorchScript, or the raw engine.

    ``torch_tensorrt`` is the imported module (importing it also registers the engine class TorchScript needs).
    """
    if "exported_program" in artifacts:
        module = torch_tensorrt.load(str(bundle_dir / artifacts["exported_program"])).module()
    elif artifacts["model"].endswith(".ts"):
        module = torch.jit.load(str(bundle_dir / artifacts["model"]), map_location=cuda).eval()
    else:
        return EnginePredictor(EngineRunner(bundle_dir / artifacts["model"], device=cuda.index or 0), cuda)

    def predict(batch: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return module(batch.to(cuda, torch.float32)).float().cpu()

    return CallablePredictor(predict, cuda, module)
