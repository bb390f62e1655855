"""ONNX Runtime sessions as every ONNX Runtime bundle is run: explicit settings, one-line load errors."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ...core.errors import CheckFailed


def import_onnxruntime():
    """``onnxruntime`` (optional: the backend is unavailable without it)."""
    import onnxruntime

    return onnxruntime


@dataclass(frozen=True)
class SessionSettings:
    """The ONNX Runtime session options a bundle is run with, explicit so a benchmark can vary them.

    ``intra_op_threads`` None: ``torch.get_num_threads()``. ``allow_spinning``: worker threads
    busy-wait for the next op (lower latency alone; steals cores from other runtimes in the same
    process). ``optimization``: ``all`` | ``extended`` | ``basic`` | ``disabled`` (graph optimisation
    level; ``disabled`` is the INT8 simulator: every Q/DQ runs as written).
    """

    intra_op_threads: int | None = None
    allow_spinning: bool = True
    optimization: str = "all"


DEFAULT_SESSION = SessionSettings()
SIMULATOR_SESSION = SessionSettings(optimization="disabled")
_LEVELS = {"all": "ORT_ENABLE_ALL", "extended": "ORT_ENABLE_EXTENDED", "basic": "ORT_ENABLE_BASIC", "disabled": "ORT_DISABLE_ALL"}


def session_options(settings: SessionSettings = DEFAULT_SESSION):
    """``onnxruntime.SessionOptions`` for ``settings``."""
    ort = import_onnxruntime()
    options = ort.SessionOptions()
    options.intra_op_num_threads = settings.intra_op_threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, _LEVELS[settings.optimization])
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if settings.allow_spinning else "0")
    return options


def open_session(path: Path, providers: list[str], settings: SessionSettings = DEFAULT_SESSION):
    ort = import_onnxruntime()
    try:
        return ort.InferenceSession(str(path), session_options(settings), providers=providers)
    except Exception as error:  # ORT raises its own exception types for bad or too-new models
        raise CheckFailed(
            f"ONNX Runtime {ort.__version__} cannot load {path} ({str(error).splitlines()[0][:200]}); "
            f"rebuild the bundle with this ONNX Runtime or install the version in its manifest"
        ) from None


def load_file(path: Path, input_name: str, output_name: str, settings: SessionSettings = DEFAULT_SESSION) -> "OrtPredictor":
    """A CPU ``OrtPredictor`` for the ONNX file at ``path`` with explicit session ``settings`` (benchmarks)."""
    return OrtPredictor(open_session(Path(path), ["CPUExecutionProvider"], settings), input_name, output_name)


class OrtPredictor:
    """A ``Predictor`` running an ONNX Runtime session on NCHW float32 batches.

    ``.session`` is the session itself; ``.device`` is ``cuda`` when its first provider is CUDA's.
    ``.module`` is None: there is no torch module to hand out.
    """

    module: nn.Module | None = None

    def __init__(self, session, input_name: str, output_name: str) -> None:
        self.session = session
        self.input_name = input_name
        self.output_name = output_name
        on_gpu = session.get_providers()[0] == "CUDAExecutionProvider"
        self.device = torch.device("cuda" if on_gpu else "cpu")

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        array = batch.detach().to("cpu", torch.float32).contiguous().numpy()
        (logits,) = self.session.run([self.output_name], {self.input_name: array})
        return torch.from_numpy(logits).float()
