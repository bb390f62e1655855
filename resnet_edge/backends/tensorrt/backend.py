"""``TensorRTBackend``: checks, the build as a sequence of steps, load and the INT8 simulator.

The steps of ``build`` (see the package docstring for the why): ``_setup`` (versions, API generation,
compile arguments), ``graph.prepare_model`` + export (``int8.quantize_and_export`` for INT8),
``_compile``, ``formats.save_formats``, ``_manifest``. With ``--dla-core`` the engine is built by
TensorRT's builder from an ONNX export instead (``dla``; Torch-TensorRT cannot place layers on the DLA),
and the bundle holds that engine alone.

FP32 engines are built with ``disable_tf32=True`` (torch-tensorrt's default lets TensorRT run FP32
convolutions in TF32, ~1e-3 off, which is the FP32 tolerance); ``--tf32`` trades that for speed. The
builder's timing cache is kept per target and TensorRT version beside the bundle (``timing_cache``) and
reused by the next build there.
"""

from __future__ import annotations

import inspect
import logging
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ...core import hostinfo
from ...core import targets as gpu_targets
from ...core.errors import CheckFailed, UsageError
from ...ops import fused_ops_status
from ...quantize import modelopt_ptq
from ..base import Backend, BackendOptions, BuildConfig, BuildResult, Predictor
from ..blocks import module_probe
from . import api, dla, graph, int8, probe
from .aoti_package import save_aoti_package
from .cudamem import INSTALL as CUDA_INSTALL
from .cudamem import available_binding
from .environment import check_dla_support, dla_core_count, import_torch_tensorrt, require_torch_tensorrt
from .formats import (
    DEFAULT_FORMATS, ENGINE_FILE, FORMATS, CompileJob, SavedFormats, check_batches, check_engine, engine_tolerance, load_predictor,
    save_formats,
)
from .logcapture import capture_tensorrt_log, layer_placement
from .profile import trt_profile
from .runner import EngineRunner
from .timing_cache import timing_cache_path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TensorRTOptions(BackendOptions):
    """The TensorRT backend's own settings (``--workspace-mb``, ``--dla-core``; the rest from the API)."""

    workspace_mb: int | None = None  # builder workspace; None: the target's default
    dla_core: int | None = None  # run on this NVDLA core (Jetson), GPU fallback allowed
    formats: tuple[str, ...] = DEFAULT_FORMATS  # which of FORMATS to save
    optimization_level: int | None = None  # TensorRT builder optimization level 0..5; None: its default
    tf32: bool = False  # FP32 builds: allow TF32 kernels (faster, ~1e-3 off); default off (disable_tf32=True)
    hardware_compatible: bool = False  # Ampere+: an engine that runs on any Ampere-or-newer GPU (slower)
    min_dla_fraction: float | None = None  # --dla-core: fail below this share of convolutions on the DLA (None: 0.9)


@dataclass
class _Setup:
    """Everything ``build`` decides before it touches the model."""

    torch_tensorrt: object
    target: gpu_targets.Target
    versions: api.TrtVersions
    generation: str
    plan: api.PrecisionPlan
    arguments: api.CompileArguments
    options: TensorRTOptions
    workspace_mb: int | None
    timing_cache: Path | None = None


@dataclass
class _Compiled:
    job: CompileJob
    seconds: float
    placement: dict | None
    engines: int
    fallback: list[str]
    dropped: list[str]  # keywords the installed torch-tensorrt lacks (recorded; see api.OPTIONAL_KEYWORDS)


def _check_formats(formats: tuple[str, ...]) -> None:
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise UsageError(f"unknown TensorRT output format(s) {unknown or formats}; choose from: {', '.join(FORMATS)}")


def _check_calibration(config: BuildConfig) -> None:
    modelopt_ptq.require_modelopt()
    method = config.calibration.method if config.calibration is not None else None
    if method is not None and method not in modelopt_ptq.CALIBRATION_METHODS:
        raise UsageError(f"calibration method {method!r} is not one ModelOpt offers; choose one of: {', '.join(modelopt_ptq.CALIBRATION_METHODS)}")


def _formats_for(options: TensorRTOptions) -> tuple[str, ...]:
    """The formats a build writes: a DLA build writes the raw engine only (its modules would run on the GPU)."""
    if options.dla_core is not None and tuple(options.formats) == DEFAULT_FORMATS:
        return ("engine",)
    return tuple(options.formats)


def _check_dla_request(options: TensorRTOptions, config: BuildConfig) -> None:
    if options.dla_core is None:
        return
    if not config.batch.static:
        raise UsageError("--dla-core needs a static batch: the DLA has no dynamic shapes; pass --batch N instead of --dynamic-batch")
    if tuple(_formats_for(options)) != ("engine",):
        raise UsageError("--dla-core builds the raw TensorRT engine only (model.engine): Torch-TensorRT modules cannot run on the DLA")


def needs_fused_ops(fallback_ops: list[str], artifacts: dict) -> bool:
    """Whether loading the bundle needs the fused-ops library: only where a graph that runs in PyTorch
    (the TorchScript or exported-program module) still calls a ``resnet_edge::`` op. Blocks converted
    into a TensorRT engine need nothing at run time, and a raw engine never does."""
    if not ({"model", "exported_program"} & set(artifacts)) or set(artifacts.values()) <= {ENGINE_FILE, int8.MODELOPT_FILE}:
        return False
    return any(op.startswith("resnet_edge.") or "resnet_edge::" in op for op in fallback_ops)


class TensorRTBackend(Backend):
    name = "tensorrt"
    display_name = "TensorRT"
    precisions = ("fp32", "fp16", "int8")
    targets = tuple(gpu_targets.GPU_TARGETS)
    can_fuse = True
    options_type = TensorRTOptions

    def default_fused(self) -> bool:
        # TensorRT fuses conv+BN+add+relu itself; the resnet_edge ops are opt-in (--fused).
        return False

    # -------------------------------------------------------------------------------------- checks
    def available(self) -> tuple[bool, str]:
        gpu = hostinfo.gpu_info()
        if gpu is None:
            return False, "no CUDA GPU is visible; TensorRT engines are built on, and run on, the GPU of the target device"
        versions = api.detect_versions()
        if versions.torch_tensorrt is None or not api.torch_tensorrt_importable():
            return False, f"torch-tensorrt is not installed; datacenter GPU: {api.DATACENTER_INSTALL}; JetPack 6: {api.JETSON_INSTALL}"
        try:
            generation = require_torch_tensorrt(versions)
        except UsageError as error:
            return False, str(error)
        return True, (
            f"torch-tensorrt {versions.torch_tensorrt} ({generation} API), TensorRT {versions.tensorrt}, "
            f"{gpu['name']} (sm {gpu['compute_capability']})"
        )

    def check_config(self, config: BuildConfig) -> None:
        if config.precision not in self.precisions:
            raise UsageError(f"the tensorrt backend builds fp32, fp16 or int8, not {config.precision}")
        options = self.options_of(config)
        self.check_options(options, config)
        target = gpu_targets.get_target(config.target)
        gpu_targets.check_gpu(target, hostinfo.gpu_info())
        versions = api.detect_versions()
        generation = require_torch_tensorrt(versions)
        cores = dla_core_count() if options.dla_core is not None else None
        check_dla_support(generation, versions, options.dla_core, cores, config.precision, options.min_dla_fraction)
        gpu_targets.check_dla(target, options.dla_core, config.precision, cores)
        api.compile_arguments(generation, config.precision, dla_core=options.dla_core, workspace_mb=options.workspace_mb,
                              tf32=options.tf32, hardware_compatible=options.hardware_compatible)
        api.check_hardware_compatible(options.hardware_compatible, hostinfo.gpu_info(), options.dla_core)
        if config.precision == "int8":
            _check_calibration(config)
        if config.fused:
            ok, reason = fused_ops_status(tensorrt=True)
            if not ok:
                raise UsageError(f"--fused needs the fused ops: {reason}; pass --no-fused")

    def check_options(self, options: TensorRTOptions, config: BuildConfig) -> None:
        """The checks that need no GPU: formats, the DLA's static batch, and that a requested raw engine
        can be run by the raw-engine runner (cuda-python or pycuda), before a whole compile is spent."""
        _check_formats(tuple(options.formats))
        _check_dla_request(options, config)
        if "engine" in _formats_for(options) and available_binding() is None:
            raise UsageError(
                f"the raw engine (format 'engine') is checked by the raw-engine runner, which needs cuda-python or pycuda: "
                f"{CUDA_INSTALL}; or leave 'engine' out of the formats"
            )

    # --------------------------------------------------------------------------------------- build
    def build(self, model: nn.Module, config: BuildConfig, out_dir: Path) -> BuildResult:
        out_dir = Path(out_dir)
        setup = self._setup(config, out_dir)
        example = config.example_input(graph.example_batch(config.batch)).to(graph.CUDA)
        prepared = graph.prepare_model(model, config)
        quantization, quantized_model = None, None
        artifacts: dict[str, str] = {}
        if config.precision == "int8":
            quantized = int8.quantize_and_export(prepared, config, example, out_dir)
            program, quantization, quantized_model = quantized.program, quantized.quantization, quantized.model
            artifacts["quantized_model"] = int8.MODELOPT_FILE
        else:
            program = graph.float_program(prepared, setup.plan, example, config.batch)
        if setup.options.dla_core is not None:
            compiled, saved = self._build_dla(setup, config, quantized_model or prepared, example, out_dir)
        else:
            compiled = self._compile(setup, config, program, example)
            saved = save_formats(compiled.job, config, _formats_for(setup.options), out_dir, compiled.placement)
            save_aoti_package(compiled.job, out_dir, saved)  # model.aoti.pt2: the C++ artifact without TorchScript
        artifacts.update(saved.artifacts)
        manifest = self._manifest(setup, config, compiled, saved)
        if quantization is not None:
            manifest["quantization"] = quantization
        return BuildResult(artifacts, manifest)

    def _build_dla(self, setup: _Setup, config: BuildConfig, graph_model: nn.Module, example: torch.Tensor, out_dir: Path):
        """The DLA engine from TensorRT's builder (``dla``), checked against the exported model at its batch."""
        settings = dla.builder_settings(config.precision, setup.options.dla_core, setup.workspace_mb, setup.versions.tensorrt)
        work = out_dir / ".dla-work"
        work.mkdir(exist_ok=True)
        try:
            dla.export_onnx(graph_model, config, work / dla.ONNX_FILE)
            log.info(f"building the DLA engine with TensorRT's builder (DLA core {setup.options.dla_core}, GPU fallback)")
            started = time.time()
            built = dla.build(work / dla.ONNX_FILE, settings, setup.timing_cache)
            seconds = round(time.time() - started, 1)
        finally:
            for leftover in work.iterdir():
                leftover.unlink()
            work.rmdir()
        saved = SavedFormats(placement=dla.checked_placement(built, setup.options.dla_core, setup.options.min_dla_fraction))
        (out_dir / ENGINE_FILE).write_bytes(built.plan)
        # The float32 (INT8: fake-quant) model the engine was built from; the DLA's FP16 rounding is
        # within engine_tolerance, as for any FP16/INT8 engine.
        checks = check_batches(graph_model, config, example)
        check_engine(out_dir / ENGINE_FILE, checks, engine_tolerance(config.precision), saved, dla_core=setup.options.dla_core)
        job = CompileJob(None, None, [], {"builder": {**settings, **built.applied}}, None, example, checks)
        return _Compiled(job, seconds, saved.placement, 1, [], []), saved

    def _setup(self, config: BuildConfig, out_dir: Path) -> _Setup:
        """Import torch-tensorrt and map the request to the installed API's compile arguments."""
        torch_tensorrt = import_torch_tensorrt()
        options = self.options_of(config)
        target = gpu_targets.get_target(config.target)
        versions = api.detect_versions()
        generation = api.generation_of_signature(set(inspect.signature(torch_tensorrt.dynamo.compile).parameters))
        if generation != versions.generation:
            log.info(f"note: torch-tensorrt {versions.torch_tensorrt} has the {generation} API (its signature decides)")
        api.check_hardware_compatible_keywords(options.hardware_compatible, torch_tensorrt, _formats_for(options), versions.torch_tensorrt)
        workspace_mb = options.workspace_mb if options.workspace_mb is not None else target.workspace_mb
        cache = timing_cache_path(out_dir, config.target, versions.tensorrt, hostinfo.gpu_info())
        arguments = api.compile_arguments(
            generation,
            config.precision,
            dla_core=options.dla_core,
            workspace_mb=workspace_mb,
            optimization_level=options.optimization_level,
            tf32=options.tf32,
            hardware_compatible=options.hardware_compatible,
            timing_cache_path=str(cache),
        )
        plan = api.precision_plan(generation, config.precision)
        return _Setup(torch_tensorrt, target, versions, generation, plan, arguments, options, workspace_mb, cache)

    def _compile(self, setup: _Setup, config: BuildConfig, program, example: torch.Tensor) -> _Compiled:
        """``torch_tensorrt.dynamo.compile`` of ``program``, with TensorRT's placement report captured."""
        torch_tensorrt = setup.torch_tensorrt
        device_spec, device_kwargs = setup.arguments.device
        kwargs = dict(setup.arguments.kwargs, device=torch_tensorrt.Device(device_spec, **device_kwargs))
        dropped = api.drop_optional_keywords(kwargs, torch_tensorrt.dynamo.compile)
        for name in dropped:
            log.warning(f"torch-tensorrt {setup.versions.torch_tensorrt} has no {name}; built without it")
        api.check_keywords(torch_tensorrt.dynamo.compile, kwargs, "torch_tensorrt.dynamo.compile")
        inputs = graph.input_specs(torch_tensorrt, config)
        log.info(
            f"compiling with torch-tensorrt {setup.versions.torch_tensorrt} ({setup.generation}), "
            f"TensorRT {setup.versions.tensorrt}, {setup.plan.description}"
        )
        started = time.time()
        with capture_tensorrt_log() as trt_log, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compiled = torch_tensorrt.dynamo.compile(program, arg_inputs=inputs, **kwargs)
        seconds = round(time.time() - started, 1)
        engines = graph.trt_submodules(compiled)
        fallback = graph.torch_fallback_ops(compiled)
        log.info(f"built {len(engines)} TensorRT engine(s) in {seconds}s" + (f"; in PyTorch: {', '.join(fallback)}" if fallback else ""))
        job = CompileJob(torch_tensorrt, program, inputs, kwargs, compiled, example, check_batches(compiled, config, example))
        return _Compiled(job, seconds, layer_placement(trt_log.lines), len(engines), fallback, dropped)

    def _manifest(self, setup: _Setup, config: BuildConfig, compiled: _Compiled, saved: SavedFormats) -> dict:
        """The ``tensorrt`` section and ``requires`` of the bundle's manifest."""
        arguments, options, versions = setup.arguments, setup.options, setup.versions
        gpu = hostinfo.gpu_info()
        dla_section = None
        if options.dla_core is not None:
            dla_section = {"core": options.dla_core, "allow_gpu_fallback": True, "built_with": "TensorRT builder API from ONNX", **compiled.job.kwargs}
        section = {
            "versions": {**versions.to_manifest(), "api": setup.generation, "modelopt": hostinfo.package_version("modelopt")},
            "precision": setup.plan.to_manifest(),
            "target": setup.target.to_manifest(),
            "workspace_mb": setup.workspace_mb,
            "device": arguments.device[0],
            "dla": dla_section,
            "compile_arguments": api.manifest_arguments(arguments.kwargs, compiled.dropped),
            "tf32": api.tf32_state(config.precision, options.tf32, compiled.dropped),
            "hardware_compatible": bool(options.hardware_compatible) and "hardware_compatible" not in compiled.dropped,
            "timing_cache": setup.timing_cache.name if setup.timing_cache else None,
            "formats": {fmt: FORMATS[fmt] for fmt in _formats_for(options)},
            "engines": compiled.engines,
            "pytorch_ops": compiled.fallback,
            "layers": saved.placement,
            "engine_io": saved.engine_io,
            "save_check_max_rel_diff": saved.checks,
            "save_check_batches": sorted({int(batch.shape[0]) for batch, _ in compiled.job.checks}),
            "compile_seconds": compiled.seconds,
            "cpp": "model.ts loads in libtorch C++ with libtorchtrt_runtime.so linked; model.engine with nvinfer alone",
            "note": "saved modules load only with the torch-tensorrt and TensorRT versions above, on this GPU model",
        }
        portable = section["hardware_compatible"]
        requires = {
            "device": "cuda",
            # A hardware-compatible engine runs on any Ampere or newer GPU, not only the one that built it.
            "gpu": ({"name": gpu["name"], "compute_capability": gpu["compute_capability"], "hardware_compatible": portable}
                    if gpu else None),
            "tensorrt": versions.tensorrt,
            "fused_ops": needs_fused_ops(compiled.fallback, saved.artifacts),
        }
        return {"tensorrt": section, "requires": requires}

    # ---------------------------------------------------------------------------------------- load
    def check_versions(self, bundle_dir: Path, manifest: dict) -> None:
        """Refuse a bundle built with another torch-tensorrt / TensorRT than the installed ones."""
        built = manifest.get("tensorrt", {}).get("versions", {})
        have = api.detect_versions()
        for key, installed in (("torch_tensorrt", have.torch_tensorrt), ("tensorrt", have.tensorrt)):
            wanted = built.get(key)
            if wanted and wanted != installed:
                raise CheckFailed(
                    f"bundle {bundle_dir} was built with {key.replace('_', '-')} {wanted} and this host has "
                    f"{installed or 'none'}; a saved TensorRT module loads only with the versions that built it: "
                    f"rebuild it here with resnet-edge compile"
                )

    def _cuda_for(self, bundle_dir: Path, manifest: dict, device: str) -> torch.device:
        """The CUDA device to run the bundle on; ``CheckFailed`` off a GPU or with other TensorRT versions."""
        device = str(device)
        if device not in ("auto", "cuda") and not device.startswith("cuda"):
            raise CheckFailed(f"bundle {bundle_dir} is a TensorRT engine and runs on a CUDA GPU only, not on {device}")
        if not torch.cuda.is_available():
            raise CheckFailed(f"bundle {bundle_dir} is a TensorRT engine and needs a CUDA GPU; none is visible")
        self.check_versions(bundle_dir, manifest)
        return torch.device("cuda", 0) if device == "auto" else torch.device(device)

    def load(self, bundle_dir: Path, manifest: dict, device: str = "auto") -> Predictor:
        bundle_dir = Path(bundle_dir)
        cuda = self._cuda_for(bundle_dir, manifest, device)
        torch_tensorrt = import_torch_tensorrt()
        if manifest.get("requires", {}).get("fused_ops"):
            ok, reason = fused_ops_status()
            if not ok:
                raise CheckFailed(f"bundle {bundle_dir} uses the fused resnet_edge ops: {reason}")
        return load_predictor(torch_tensorrt, bundle_dir, manifest, cuda)

    def profile_blocks(self, bundle_dir: Path, manifest: dict, blocks: list[str], batch: torch.Tensor, iters: int,
                       device: str = "auto") -> dict[str, float] | None:
        """TensorRT's ``IProfiler`` on the bundle's raw engine, layers mapped to blocks; None without a raw engine."""
        artifacts = manifest["artifacts"]
        name = artifacts.get("engine") or (artifacts["model"] if artifacts["model"].endswith(".engine") else None)
        if name is None:
            return None
        if not torch.cuda.is_available():
            raise CheckFailed(f"bundle {bundle_dir} is a TensorRT engine and needs a CUDA GPU to be profiled; none is visible")
        section = manifest.get("tensorrt") or {}
        with EngineRunner(Path(bundle_dir) / name, dla_core=(section.get("dla") or {}).get("core"),
                          io_names=section.get("engine_io")) as runner:
            return trt_profile(runner, blocks, batch.float().cpu().numpy(), iters)

    def block_probe(self, bundle_dir: Path, manifest: dict, blocks: list[str], device: str = "auto",
                    simulated: bool = False, reference: nn.Module | None = None):
        """``simulated`` (INT8): hooks on the bundle's ModelOpt simulator, on the CPU. Otherwise the probe
        engine (``probe``): the build again with the block outputs marked as engine outputs, on the GPU."""
        if simulated:
            simulator = self.simulator(bundle_dir, manifest)
            return None if simulator is None else module_probe(simulator.module, blocks)
        cuda = self._cuda_for(Path(bundle_dir), manifest, device)
        return probe.probe_engine(Path(bundle_dir), manifest, blocks, reference, cuda)

    def block_probe_reading(self, manifest: dict, blocks: list[str]) -> str:
        return probe.reading(manifest, blocks)

    def simulator(self, bundle_dir: Path, manifest: dict) -> Predictor | None:
        """INT8: the ModelOpt fake-quant model saved at build time, on the CPU: the engine's exact scales."""
        name = manifest.get("artifacts", {}).get("quantized_model")
        if manifest.get("precision") != "int8" or not name:
            return None
        return int8.load_simulator(Path(bundle_dir) / name, manifest)
