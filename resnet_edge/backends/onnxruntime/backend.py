"""The portable backend: ONNX export (FP32, FP16, INT8 in Q/DQ form) run with ONNX Runtime.

* FP32: ``torch.onnx.export`` (the torch.export-based exporter) of the model with BatchNorm folded.
* FP16: the FP32 graph converted by ``onnxruntime.transformers.float16`` with float32 inputs and
  outputs kept, so callers feed the same tensors at every precision.
* INT8: calibrated and Q/DQ-annotated by ``resnet_edge.quantize.ort_calibrate``; the placement follows
  ``--target`` (``cpu``: ORT's integer kernels; GPU targets: TensorRT's explicit-quantization rules).

At run time the session (``session``) uses ``torch.get_num_threads()`` intra-op threads, so one
``torch.set_num_threads(n)`` governs eager PyTorch and ONNX Runtime alike.
"""

from __future__ import annotations

import importlib.util
import logging
import tempfile
import warnings
from pathlib import Path

import torch
from torch import nn

from ...core.errors import UsageError
from ...quantize import ort_calibrate
from ..base import Backend, BuildConfig, BuildResult, Predictor
from ..onnx_graph import export_onnx, import_onnx
from .probe import ort_probe
from .profile import ort_profile
from .session import DEFAULT_SESSION, SIMULATOR_SESSION, OrtPredictor, import_onnxruntime, load_file, open_session, session_options

log = logging.getLogger(__name__)

MODEL_FILE = "model.onnx"
CACHE_FILE = "calibration-cache.json"


def _float16_converter():
    """ONNX Runtime's float32 -> float16 graph converter."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    return convert_float_to_float16


def _save_float16(fp32_path: Path, out_path: Path) -> None:
    """The FP32 graph converted to FP16 with float32 inputs and outputs kept."""
    onnx = import_onnx()
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
    saved = import_onnx().load(str(path))
    return {
        "opset": max(op.version for op in saved.opset_import if op.domain in ("", "ai.onnx")),
        "ir_version": saved.ir_version,
        "exporter": f"torch.onnx (dynamo) {torch.__version__}",
        "dynamic_batch": not config.batch.static,
        "onnxruntime": import_onnxruntime().__version__,
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
        ort = import_onnxruntime()
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
                onnx = import_onnx()
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
        available = import_onnxruntime().get_available_providers()
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
        session = open_session(path, self._providers(manifest, str(device)))
        return OrtPredictor(session, manifest["input"]["name"], manifest["output"]["name"])

    def simulator(self, bundle_dir: Path, manifest: dict) -> Predictor | None:
        """Graph optimisations off: every DequantizeLinear -> float op -> QuantizeLinear runs as
        written, i.e. fake quantization with exactly the bundle's scales (what TensorRT computes
        for a Q/DQ network, up to its kernels' accumulation order)."""
        if manifest.get("precision") != "int8":
            return None
        path = Path(bundle_dir) / manifest["artifacts"]["model"]
        session = open_session(path, ["CPUExecutionProvider"], SIMULATOR_SESSION)
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
        """The artifact's graph with each block's output added as a graph output (``probe.ort_probe``),
        run as ``load`` runs it, or with ``simulated`` as ``simulator`` does (INT8 only)."""
        if simulated and manifest.get("precision") != "int8":
            return None
        providers = ["CPUExecutionProvider"] if simulated else self._providers(manifest, str(device))
        path = Path(bundle_dir) / manifest["artifacts"]["model"]
        return ort_probe(path, manifest, blocks, lambda probe: open_session(probe, providers, SIMULATOR_SESSION if simulated else DEFAULT_SESSION))

    def profile_blocks(self, bundle_dir: Path, manifest: dict, blocks: list[str], batch: torch.Tensor, iters: int,
                       device: str = "auto") -> dict[str, float] | None:
        """ONNX Runtime's own profiler (``SessionOptions.enable_profiling``), kernels mapped to blocks (``profile``)."""
        providers = self._providers(manifest, str(device))

        def open_profiled(path: Path, prefix: str):
            options = session_options(DEFAULT_SESSION)
            options.enable_profiling, options.profile_file_prefix = True, prefix
            return import_onnxruntime().InferenceSession(str(path), options, providers=providers)

        path = Path(bundle_dir) / manifest["artifacts"]["model"]
        return ort_profile(path, blocks, open_profiled, manifest["input"]["name"], batch, iters)
