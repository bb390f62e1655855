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

from ...core.errors import CheckFailed, UsageError
from ...quantize import ort_calibrate
from ..base import Backend, BuildConfig, BuildResult, Predictor
from ..onnx_graph import export_onnx, import_onnx
from ..registry import get_backend
from .probe import openvino_probe
from .profile import openvino_profile
from .runtime import compile_file, compile_model, cpu_capabilities, half_type, import_openvino

log = logging.getLogger(__name__)

MODEL_FILE = "model.xml"
WEIGHTS_FILE = "model.bin"
QDQ_FILE = "model.qdq.onnx"
CACHE_FILE = "calibration-cache.json"


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
        return True, f"openvino {import_openvino().get_version().split('-')[0]}, CPU capabilities {', '.join(capabilities)}"

    def check_config(self, config: BuildConfig) -> None:
        super().check_config(config)
        if config.precision == "fp16" and half_type(cpu_capabilities()) is None:
            raise UsageError("this CPU has neither FP16 nor BF16 kernels for OpenVINO; use --fp32 or --int8")
        if config.precision == "int8" and importlib.util.find_spec("onnxruntime") is None:
            raise UsageError("OpenVINO INT8 is quantized with onnxruntime.quantization, which is not installed (pip install -r requirements.txt)")

    def build(self, model: nn.Module, config: BuildConfig, out_dir: Path) -> BuildResult:
        ov = import_openvino()
        out_dir = Path(out_dir)
        artifacts = {"model": MODEL_FILE, "weights": WEIGHTS_FILE}
        extra: dict = {}
        precision = "f32"
        with tempfile.TemporaryDirectory(prefix="resnet-edge-openvino-") as work:
            work_dir = Path(work)
            source = work_dir / "fp32.onnx"
            log.info("exporting ONNX (torch.onnx, BatchNorm folded) for OpenVINO")
            export_onnx(model, config, source)
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
        """The IR with each block's output added as a result (``probe.openvino_probe``), compiled as
        ``load`` compiles it; with ``simulated``, the Q/DQ ONNX under ONNX Runtime's simulator (INT8)."""
        if simulated:
            onnx_runtime, manifest = self._simulator_source(manifest)
            return onnx_runtime.block_probe(bundle_dir, manifest, blocks, simulated=True) if onnx_runtime else None
        precision = self._runnable_precision(bundle_dir, manifest, device)
        path = Path(bundle_dir) / manifest["artifacts"]["model"]
        core = import_openvino().Core()
        return openvino_probe(core.read_model(str(path)), blocks, lambda model: compile_model(core, model, path, precision))

    def _simulator_source(self, manifest: dict) -> tuple[Backend | None, dict]:
        """ONNX Runtime and the manifest pointing at the bundle's Q/DQ ONNX, for the INT8 simulator
        (graph optimisations off: exactly the artifact's scales); (None, manifest) for a float bundle
        or without ONNX Runtime."""
        qdq = (manifest.get("artifacts") or {}).get("qdq_onnx")
        if manifest.get("precision") != "int8" or qdq is None:
            return None, manifest
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
        ONNX's scopes when the bundle keeps it, else through the weight names (``profile``)."""
        precision = self._runnable_precision(bundle_dir, manifest, device)
        core = import_openvino().Core()
        path = Path(bundle_dir) / manifest["artifacts"]["model"]
        model = core.read_model(str(path))
        qdq = (manifest.get("artifacts") or {}).get("qdq_onnx")
        source = import_onnx().load(str(Path(bundle_dir) / qdq)) if qdq else None
        return openvino_profile(compile_model(core, model, path, precision, PERF_COUNT=True), model, blocks, batch, iters, source)
