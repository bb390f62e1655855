"""The portable backend: ONNX export (FP32, FP16, INT8 in Q/DQ form) run with ONNX Runtime.

* FP32: ``torch.onnx.export`` (the torch.export-based exporter) of the model with BatchNorm folded.
* FP16: the FP32 graph converted by ``onnxruntime.transformers.float16`` with float32 inputs and
  outputs kept, so callers feed the same tensors at every precision.
* INT8: calibrated and Q/DQ-annotated by ``resnet_edge.quantize.ort_calibrate``; the placement follows
  ``--target`` (``cpu``: ORT's integer kernels; GPU targets: TensorRT's explicit-quantization rules).

At run time the session uses ``torch.get_num_threads()`` intra-op threads, so one
``torch.set_num_threads(n)`` governs eager PyTorch and ONNX Runtime alike.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..core.errors import CheckFailed, UsageError
from ..fuse.fold import fold_batchnorm
from ..quantize import ort_calibrate
from . import probes, profiling
from .base import Backend, BuildConfig, BuildResult, Predictor

log = logging.getLogger(__name__)

MODEL_FILE = "model.onnx"
# The lowest opset torch.export's ONNX exporter emits natively: ONNX Runtime >= 1.14, TensorRT >= 10.0.
OPSET = 18
CACHE_FILE = "calibration-cache.json"


def export_onnx(model: nn.Module, config: BuildConfig, path: Path) -> None:
    """Export ``model`` (BatchNorm folded) to a single-file ONNX model with a static or dynamic batch."""
    folded = fold_batchnorm(model).float().cpu().eval()
    example = config.example_input(batch=max(config.batch.opt, 2) if not config.batch.static else config.batch.opt)
    dynamic_shapes = None
    if not config.batch.static:
        dynamic_shapes = {"x": {0: torch.export.Dim("batch", min=1, max=max(config.batch.max, 2))}}
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(
            folded,
            (example,),
            str(path),
            input_names=[config.input_name],
            output_names=[config.output_name],
            dynamic_shapes=dynamic_shapes,
            dynamo=True,
            opset_version=OPSET,
            external_data=False,
            verbose=False,
        )


def _ort():
    """``onnxruntime`` (optional: the backend is unavailable without it)."""
    import onnxruntime

    return onnxruntime


def _onnx():
    """``onnx`` (optional, installed with onnxruntime's extras)."""
    import onnx

    return onnx


def _float16_converter():
    """ONNX Runtime's float32 -> float16 graph converter."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    return convert_float_to_float16


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
    ort = _ort()
    options = ort.SessionOptions()
    options.intra_op_num_threads = settings.intra_op_threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, _LEVELS[settings.optimization])
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if settings.allow_spinning else "0")
    return options


def _session(path: Path, providers: list[str], settings: SessionSettings = DEFAULT_SESSION):
    ort = _ort()
    try:
        return ort.InferenceSession(str(path), session_options(settings), providers=providers)
    except Exception as error:  # ORT raises its own exception types for bad or too-new models
        raise CheckFailed(
            f"ONNX Runtime {ort.__version__} cannot load {path} ({str(error).splitlines()[0][:200]}); "
            f"rebuild the bundle with this ONNX Runtime or install the version in its manifest"
        ) from None


def load_file(path: Path, input_name: str, output_name: str, settings: SessionSettings = DEFAULT_SESSION) -> "OrtPredictor":
    """A CPU ``OrtPredictor`` for the ONNX file at ``path`` with explicit session ``settings`` (benchmarks)."""
    return OrtPredictor(_session(Path(path), ["CPUExecutionProvider"], settings), input_name, output_name)


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


def _save_float16(fp32_path: Path, out_path: Path) -> None:
    """The FP32 graph converted to FP16 with float32 inputs and outputs kept."""
    onnx = _onnx()
    convert = _float16_converter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        half = convert(onnx.load(str(fp32_path)), keep_io_types=True)
    onnx.save(half, str(out_path))


def _quantize(fp32_path: Path, out_dir: Path, config: BuildConfig, work_dir: Path) -> dict:
    """Calibrate and Q/DQ-annotate the FP32 graph into ``out_dir``; the manifest's ``quantization``."""
    placement = ort_calibrate.placement_for_target(config.target)
    return ort_calibrate.quantize_and_store(
        fp32_path, out_dir / MODEL_FILE, out_dir / CACHE_FILE, config.calibration, placement, work_dir,
        keep_float=config.quantization.keep_float, ranges_file=config.quantization.ranges_file,
    )  # fmt: skip


def _onnx_section(path: Path, config: BuildConfig) -> dict:
    """The manifest's ``onnx`` section for the saved model at ``path``."""
    saved = _onnx().load(str(path))
    return {
        "opset": max(op.version for op in saved.opset_import if op.domain in ("", "ai.onnx")),
        "ir_version": saved.ir_version,
        "exporter": f"torch.onnx (dynamo) {torch.__version__}",
        "dynamic_batch": not config.batch.static,
        "onnxruntime": _ort().__version__,
    }


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"
    display_name = "ONNX Runtime"
    precisions = ("fp32", "fp16", "int8")
    can_fuse = False  # the fused resnet_edge:: ops are PyTorch ops, not ONNX ones
    takes_ranges = True  # INT8 from a bundle's stored ranges (``QuantOptions.ranges_file``: retarget)

    def available(self) -> tuple[bool, str]:
        missing = [name for name in ("onnx", "onnxruntime", "onnxscript") if importlib.util.find_spec(name) is None]
        if missing:
            return False, f"{', '.join(missing)} not installed (pip install -r requirements.txt)"
        ort = _ort()
        return True, f"onnxruntime {ort.__version__}, providers {', '.join(ort.get_available_providers())}"

    def build(self, model: nn.Module, config: BuildConfig, out_dir: Path) -> BuildResult:
        out_dir = Path(out_dir)
        artifacts = {"model": MODEL_FILE}
        extra: dict = {}
        with tempfile.TemporaryDirectory(prefix="resnet-edge-onnx-") as work:
            work_dir = Path(work)
            fp32_path = work_dir / "fp32.onnx"
            log.info("exporting ONNX (torch.onnx, BatchNorm folded)")
            export_onnx(model, config, fp32_path)
            if config.precision == "fp32":
                onnx = _onnx()
                onnx.save(onnx.load(str(fp32_path)), str(out_dir / MODEL_FILE))
            elif config.precision == "fp16":
                _save_float16(fp32_path, out_dir / MODEL_FILE)
            else:
                extra["quantization"] = _quantize(fp32_path, out_dir, config, work_dir)
                artifacts["calibration_cache"] = CACHE_FILE
        extra["onnx"] = _onnx_section(out_dir / MODEL_FILE, config)
        extra["requires"] = {"device": "any", "gpu": None, "tensorrt": None, "fused_ops": False}
        return BuildResult(artifacts, extra)

    def _providers(self, manifest: dict, device: str) -> list[str]:
        available = _ort().get_available_providers()
        if device == "cpu":
            return ["CPUExecutionProvider"]
        if device.startswith("cuda"):
            if "CUDAExecutionProvider" not in available:
                raise UsageError("this ONNX Runtime has no CUDA provider; install onnxruntime-gpu or use --device cpu")
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]
        if device != "auto":
            raise UsageError(f"unknown device {device!r}; use cpu, cuda or auto")
        if manifest.get("target") != "cpu" and "CUDAExecutionProvider" in available:
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]
        return ["CPUExecutionProvider"]

    def load(self, bundle_dir: Path, manifest: dict, device: str = "auto") -> Predictor:
        path = Path(bundle_dir) / manifest["artifacts"]["model"]
        session = _session(path, self._providers(manifest, str(device)))
        return OrtPredictor(session, manifest["input"]["name"], manifest["output"]["name"])

    def simulator(self, bundle_dir: Path, manifest: dict) -> Predictor | None:
        """Graph optimisations off: every DequantizeLinear -> float op -> QuantizeLinear runs as
        written, i.e. fake quantization with exactly the bundle's scales (what TensorRT computes
        for a Q/DQ network, up to its kernels' accumulation order)."""
        if manifest.get("precision") != "int8":
            return None
        path = Path(bundle_dir) / manifest["artifacts"]["model"]
        session = _session(path, ["CPUExecutionProvider"], SIMULATOR_SESSION)
        return OrtPredictor(session, manifest["input"]["name"], manifest["output"]["name"])

    def foreign_predictor(self, bundle_dir: Path, manifest: dict) -> Predictor | None:
        """Another backend's ONNX file (its ``model``, or the Q/DQ ONNX an IR was converted from) under ONNX Runtime on the CPU."""
        if manifest.get("backend") == self.name or not self.available()[0]:
            return None
        artifacts = manifest.get("artifacts") or {}
        onnx_file = next((name for role, name in artifacts.items() if name.endswith(".onnx") and role != "calibration_set"), None)
        if onnx_file is None:
            return None
        return load_file(Path(bundle_dir) / onnx_file, manifest["input"]["name"], manifest["output"]["name"])

    def block_probe(self, bundle_dir: Path, manifest: dict, blocks: list[str], device: str = "auto",
                    simulated: bool = False, reference=None):
        """The artifact's graph with each block's output added as a graph output (``probes.ort_probe``),
        run as ``load`` runs it, or with ``simulated`` as ``simulator`` does (INT8 only)."""
        if simulated and manifest.get("precision") != "int8":
            return None
        providers = ["CPUExecutionProvider"] if simulated else self._providers(manifest, str(device))
        path = Path(bundle_dir) / manifest["artifacts"]["model"]
        return probes.ort_probe(path, manifest, blocks, lambda probe: _session(probe, providers, SIMULATOR_SESSION if simulated else DEFAULT_SESSION))

    def profile_blocks(self, bundle_dir: Path, manifest: dict, blocks: list[str], batch: torch.Tensor, iters: int,
                       device: str = "auto") -> dict[str, float] | None:
        """ONNX Runtime's own profiler (``SessionOptions.enable_profiling``), kernels mapped to blocks by ``profiling``."""
        providers = self._providers(manifest, str(device))

        def open_profiled(path: Path, prefix: str):
            options = session_options(DEFAULT_SESSION)
            options.enable_profiling, options.profile_file_prefix = True, prefix
            return _ort().InferenceSession(str(path), options, providers=providers)

        path = Path(bundle_dir) / manifest["artifacts"]["model"]
        return profiling.ort_profile(path, blocks, open_profiled, manifest["input"]["name"], batch, iters)
