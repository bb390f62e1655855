"""OpenVINO backend: the model as OpenVINO IR (``model.xml`` + ``model.bin``), run by OpenVINO's CPU plugin.

* FP32: the ONNX Runtime backend's export (BatchNorm folded) converted by ``openvino.convert_model``;
  run with ``INFERENCE_PRECISION_HINT=f32`` so a CPU with AMX does not silently drop to bf16.
* FP16: the same IR with FP16-compressed weights, run in the CPU's native half type: ``f16`` where the
  CPU plugin reports ``FP16`` in ``OPTIMIZATION_CAPABILITIES``, else ``bf16`` where it reports ``BF16``;
  refused on a CPU with neither (the plugin would silently run FP32 and call it FP16).
* INT8: the project's Q/DQ ONNX (``quantize.ort_calibrate.quantize_model``, the ``onnxruntime-cpu``
  placement and exactly ``config.calibration``'s method), converted to IR: OpenVINO's low-precision
  transformations turn each DQ -> op -> Q group into integer kernels. The Q/DQ ONNX is kept in the
  bundle (``qdq_onnx``) so the INT8 simulator (ONNX Runtime with graph optimisations off) runs
  exactly the scales of the artifact, and other runtimes can be benchmarked on the same model.

At run time the compiled model uses ``torch.get_num_threads()`` inference threads (as ONNX Runtime
does), so one ``torch.set_num_threads(n)`` governs every runtime. ``foreign_predictor`` runs another
backend's ONNX artifact under OpenVINO, for ``bench``.
"""

from __future__ import annotations

import importlib.util
import logging
import tempfile
from pathlib import Path

import torch
from torch import nn

from ..core.errors import CheckFailed, UsageError
from ..quantize import ort_calibrate
from . import probes, profiling
from .base import Backend, BuildConfig, BuildResult, Predictor

log = logging.getLogger(__name__)

MODEL_FILE = "model.xml"
WEIGHTS_FILE = "model.bin"
QDQ_FILE = "model.qdq.onnx"
CACHE_FILE = "calibration-cache.json"
# OpenVINO's names for the half types, by the capability the CPU plugin reports for them.
HALF_TYPES = (("FP16", "f16"), ("BF16", "bf16"))


def _ov():
    """``openvino`` (optional: the backend is unavailable without it)."""
    import openvino

    return openvino


def _onnx_export():
    """The project's ONNX export (BatchNorm folded, static or dynamic batch), shared with ONNX Runtime."""
    from .onnxruntime import export_onnx

    return export_onnx


def _onnx_model(path: Path):
    """The ONNX model at ``path`` (``onnx`` is optional: installed with the backend's requirements)."""
    import onnx

    return onnx.load(str(path))


def cpu_capabilities() -> tuple[str, ...]:
    """What OpenVINO's CPU plugin says this CPU can run natively (``FP32``, ``BF16``, ``INT8``...)."""
    return tuple(_ov().Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


def half_type(capabilities: tuple[str, ...]) -> str | None:
    """The half type to infer FP16 bundles in on a CPU with ``capabilities``: ``f16``, ``bf16`` or None."""
    return next((ov_type for capability, ov_type in HALF_TYPES if capability in capabilities), None)


class OvPredictor:
    """A ``Predictor`` running an OpenVINO compiled model on NCHW float32 batches (on the CPU)."""

    module: nn.Module | None = None

    def __init__(self, compiled) -> None:
        self.compiled = compiled
        self.request = compiled.create_infer_request()
        self.device = torch.device("cpu")

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        array = batch.detach().to("cpu", torch.float32).contiguous().numpy()
        self.request.infer({0: array})
        return torch.from_numpy(self.request.get_output_tensor(0).data.copy()).float()


def _compile(core, model, path: Path, inference_precision: str, **extra_config):
    """``model`` compiled for the CPU as every bundle is run (plus ``extra_config``, e.g. ``PERF_COUNT``);
    a model this OpenVINO cannot compile is a ``CheckFailed`` in one line."""
    ov = _ov()
    config = {
        "INFERENCE_NUM_THREADS": torch.get_num_threads(),
        "INFERENCE_PRECISION_HINT": inference_precision,
        "PERFORMANCE_HINT": "LATENCY",
        **extra_config,
    }
    try:
        return core.compile_model(model if model is not None else core.read_model(str(path)), "CPU", config)
    except Exception as error:  # OpenVINO raises RuntimeError with multi-line C++ context
        raise CheckFailed(
            f"OpenVINO {ov.__version__} cannot load {path} ({str(error).strip().splitlines()[0][:200]}); "
            f"rebuild the bundle with this OpenVINO or install the version in its manifest"
        ) from None


def compile_file(path: Path, inference_precision: str = "f32") -> OvPredictor:
    """An ``OvPredictor`` for an IR (``.xml``, its ``.bin`` beside it) or ONNX file, on the CPU."""
    return OvPredictor(_compile(_ov().Core(), None, path, inference_precision))


class OpenVinoBackend(Backend):
    name = "openvino"
    display_name = "OpenVINO"
    precisions = ("fp32", "fp16", "int8")
    targets = ("cpu",)
    can_fuse = False  # the fused resnet_edge:: ops are PyTorch ops
    takes_ranges = True  # INT8 from a bundle's stored ranges (``QuantOptions.ranges_file``: retarget)

    def available(self) -> tuple[bool, str]:
        missing = [name for name in ("openvino", "onnx", "onnxscript") if importlib.util.find_spec(name) is None]
        if missing:
            return False, f"{', '.join(missing)} not installed (pip install -r requirements.txt)"
        try:
            capabilities = cpu_capabilities()
        except Exception as error:  # a broken install or an unsupported CPU
            return False, f"OpenVINO's CPU plugin is not usable ({str(error).strip().splitlines()[0][:120]})"
        return True, f"openvino {_ov().get_version().split('-')[0]}, CPU capabilities {', '.join(capabilities)}"

    def check_config(self, config: BuildConfig) -> None:
        super().check_config(config)
        if config.precision == "fp16" and half_type(cpu_capabilities()) is None:
            raise UsageError("this CPU has neither FP16 nor BF16 kernels for OpenVINO; use --fp32 or --int8")
        if config.precision == "int8" and importlib.util.find_spec("onnxruntime") is None:
            raise UsageError("OpenVINO INT8 is quantized with onnxruntime.quantization, which is not installed (pip install -r requirements.txt)")

    def build(self, model: nn.Module, config: BuildConfig, out_dir: Path) -> BuildResult:
        ov = _ov()
        out_dir = Path(out_dir)
        artifacts = {"model": MODEL_FILE, "weights": WEIGHTS_FILE}
        extra: dict = {}
        precision = "f32"
        with tempfile.TemporaryDirectory(prefix="resnet-edge-openvino-") as work:
            work_dir = Path(work)
            source = work_dir / "fp32.onnx"
            log.info("exporting ONNX (torch.onnx, BatchNorm folded) for OpenVINO")
            _onnx_export()(model, config, source)
            if config.precision == "fp16":
                precision = half_type(cpu_capabilities())
            if config.precision == "int8":
                extra["quantization"] = self._quantize(source, out_dir, config, work_dir)
                artifacts.update(qdq_onnx=QDQ_FILE, calibration_cache=CACHE_FILE)
                source = out_dir / QDQ_FILE
            converted = ov.convert_model(str(source))
            ov.save_model(converted, str(out_dir / MODEL_FILE), compress_to_fp16=config.precision == "fp16")
        extra["openvino"] = {
            "version": ov.get_version(),
            "ir_source": "ONNX Q/DQ (onnxruntime.quantization)" if config.precision == "int8" else f"torch.onnx (dynamo) {torch.__version__}",
            "inference_precision": precision,
            "dynamic_batch": not config.batch.static,
            "cpu_capabilities": list(cpu_capabilities()),
        }
        extra["requires"] = {"device": "cpu", "gpu": None, "tensorrt": None, "fused_ops": False}
        return BuildResult(artifacts, extra)

    @staticmethod
    def _quantize(fp32_path: Path, out_dir: Path, config: BuildConfig, work_dir: Path) -> dict:
        """The project's Q/DQ INT8 ONNX (CPU placement) at ``out_dir/QDQ_FILE``; the ``quantization`` section."""
        placement = ort_calibrate.placement_for_target("cpu")
        section = ort_calibrate.quantize_and_store(
            fp32_path, out_dir / QDQ_FILE, out_dir / CACHE_FILE, config.calibration, placement, work_dir,
            keep_float=config.quantization.keep_float, ranges_file=config.quantization.ranges_file,
        )  # fmt: skip
        section["runtime"] = "openvino (Q/DQ ONNX converted to IR; low-precision transformations at load)"
        return section

    def _runnable_precision(self, bundle_dir: Path, manifest: dict, device: str) -> str:
        """The checks before anything runs the bundle (the CPU, OpenVINO installed, kernels for its
        precision), without compiling it; the inference precision to compile it with."""
        device = str(device)
        if device not in ("auto", "cpu"):
            raise UsageError(f"OpenVINO bundles run on the CPU only; use --device cpu (not {device})")
        if importlib.util.find_spec("openvino") is None:
            built = (manifest.get("openvino") or {}).get("version", "?").split("-")[0]
            raise CheckFailed(f"bundle {bundle_dir} needs OpenVINO (built with {built}) and it is not installed: pip install openvino=={built}")
        precision = (manifest.get("openvino") or {}).get("inference_precision", "f32")
        if precision != "f32" and half_type(cpu_capabilities()) != precision:
            raise CheckFailed(f"bundle {bundle_dir} runs in {precision}, which this CPU has no kernels for "
                              f"(OpenVINO capabilities: {', '.join(cpu_capabilities())}); rebuild it here with --fp32 or --int8")
        return precision

    def load(self, bundle_dir: Path, manifest: dict, device: str = "auto") -> Predictor:
        precision = self._runnable_precision(bundle_dir, manifest, device)
        return compile_file(Path(bundle_dir) / manifest["artifacts"]["model"], precision)

    def block_probe(self, bundle_dir: Path, manifest: dict, blocks: list[str], device: str = "auto",
                    simulated: bool = False, reference: nn.Module | None = None):
        """The IR with each block's output added as a result (``probes.openvino_probe``), compiled as
        ``load`` compiles it; with ``simulated``, the Q/DQ ONNX under ONNX Runtime's simulator (INT8)."""
        if simulated:
            onnx_runtime, manifest = self._simulator_source(manifest)
            return onnx_runtime.block_probe(bundle_dir, manifest, blocks, simulated=True) if onnx_runtime else None
        precision = self._runnable_precision(bundle_dir, manifest, device)
        path = Path(bundle_dir) / manifest["artifacts"]["model"]
        core = _ov().Core()
        return probes.openvino_probe(core.read_model(str(path)), blocks, lambda model: _compile(core, model, path, precision))

    def _simulator_source(self, manifest: dict) -> tuple[Backend | None, dict]:
        """ONNX Runtime and the manifest pointing at the bundle's Q/DQ ONNX, for the INT8 simulator
        (graph optimisations off: exactly the artifact's scales); (None, manifest) for a float bundle
        or without ONNX Runtime."""
        qdq = (manifest.get("artifacts") or {}).get("qdq_onnx")
        if manifest.get("precision") != "int8" or qdq is None:
            return None, manifest
        from . import get_backend  # the package is loaded by now; a top-level import would be circular

        onnx_runtime = get_backend("onnxruntime")
        if not onnx_runtime.available()[0]:
            return None, manifest
        return onnx_runtime, {**manifest, "artifacts": {**manifest["artifacts"], "model": qdq}}

    def simulator(self, bundle_dir: Path, manifest: dict) -> Predictor | None:
        """The INT8 bundle's Q/DQ ONNX under ONNX Runtime's simulator (graph optimisations off): fake
        quantization with exactly the artifact's scales. None without ONNX Runtime or for float bundles."""
        onnx_runtime, manifest = self._simulator_source(manifest)
        return onnx_runtime.simulator(bundle_dir, manifest) if onnx_runtime else None

    def foreign_predictor(self, bundle_dir: Path, manifest: dict) -> Predictor | None:
        """Another backend's ONNX artifact run under OpenVINO (FP32 inference precision), for ``bench``."""
        model = (manifest.get("artifacts") or {}).get("model", "")
        if manifest.get("backend") == self.name or not model.endswith(".onnx") or not self.available()[0]:
            return None
        return compile_file(Path(bundle_dir) / model, "f32")

    def profile_blocks(self, bundle_dir: Path, manifest: dict, blocks: list[str], batch: torch.Tensor, iters: int,
                       device: str = "auto") -> dict[str, float] | None:
        """OpenVINO's performance counters (``PERF_COUNT``); layers mapped to blocks through the Q/DQ
        ONNX's scopes when the bundle keeps it, else through the weight names (``profiling``)."""
        precision = self._runnable_precision(bundle_dir, manifest, device)
        core = _ov().Core()
        path = Path(bundle_dir) / manifest["artifacts"]["model"]
        model = core.read_model(str(path))
        qdq = (manifest.get("artifacts") or {}).get("qdq_onnx")
        source = _onnx_model(Path(bundle_dir) / qdq) if qdq else None
        return profiling.openvino_profile(_compile(core, model, path, precision, PERF_COUNT=True), model, blocks, batch, iters, source)

