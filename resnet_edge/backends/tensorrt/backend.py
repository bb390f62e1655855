"""``TensorRTBackend``: checks, the build as a sequence of steps, load and the INT8 simulator.

The steps of ``build`` (see the package docstring for the why): ``_setup`` (versions, API generation,
compile arguments), ``graph.prepare_model`` + export (``int8.quantize_and_export`` for INT8),
``_compile``, ``formats.save_formats``, ``_manifest``.
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
from . import api, graph, int8
from .environment import check_dla_support, dla_core_count, import_torch_tensorrt, require_torch_tensorrt
from .formats import DEFAULT_FORMATS, FORMATS, CompileJob, SavedFormats, load_predictor, save_formats
from .logcapture import capture_tensorrt_log, layer_placement

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TensorRTOptions(BackendOptions):
    """The TensorRT backend's own settings (``--workspace-mb``, ``--dla-core``; the rest from the API)."""

    workspace_mb: int | None = None  # builder workspace; None: the target's default
    dla_core: int | None = None  # run on this NVDLA core (Jetson), GPU fallback allowed
    formats: tuple[str, ...] = DEFAULT_FORMATS  # which of FORMATS to save
    optimization_level: int | None = None  # TensorRT builder optimization level 0..5; None: its default


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


@dataclass
class _Compiled:
    job: CompileJob
    seconds: float
    placement: dict | None
    engines: int
    fallback: list[str]


def _check_formats(formats: tuple[str, ...]) -> None:
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise UsageError(f"unknown TensorRT output format(s) {unknown or formats}; choose from: {', '.join(FORMATS)}")


def _check_calibration(config: BuildConfig) -> None:
    modelopt_ptq.require_modelopt()
    method = config.calibration.method if config.calibration is not None else None
    if method is not None and method not in modelopt_ptq.CALIBRATION_METHODS:
        raise UsageError(f"calibration method {method!r} is not one ModelOpt offers; choose one of: {', '.join(modelopt_ptq.CALIBRATION_METHODS)}")


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
        target = gpu_targets.get_target(config.target)
        gpu_targets.check_gpu(target, hostinfo.gpu_info())
        versions = api.detect_versions()
        generation = require_torch_tensorrt(versions)
        cores = dla_core_count() if options.dla_core is not None else None
        gpu_targets.check_dla(target, options.dla_core, config.precision, cores)
        check_dla_support(generation, versions, options.dla_core, cores)
        api.compile_arguments(generation, config.precision, dla_core=options.dla_core, workspace_mb=options.workspace_mb)
        _check_formats(tuple(options.formats))
        if config.precision == "int8":
            _check_calibration(config)
        if config.fused:
            ok, reason = fused_ops_status(tensorrt=True)
            if not ok:
                raise UsageError(f"--fused needs the fused ops: {reason}; pass --no-fused")

    # --------------------------------------------------------------------------------------- build
    def build(self, model: nn.Module, config: BuildConfig, out_dir: Path) -> BuildResult:
        out_dir = Path(out_dir)
        setup = self._setup(config)
        example = config.example_input(graph.example_batch(config.batch)).to(graph.CUDA)
        prepared = graph.prepare_model(model, config)
        quantization = None
        artifacts: dict[str, str] = {}
        if config.precision == "int8":
            quantized = int8.quantize_and_export(prepared, config, example, out_dir)
            program, quantization = quantized.program, quantized.quantization
            artifacts["quantized_model"] = int8.MODELOPT_FILE
        else:
            program = graph.float_program(prepared, setup.plan, example, config.batch)
        compiled = self._compile(setup, config, program, example)
        saved = save_formats(compiled.job, config, tuple(setup.options.formats), out_dir, compiled.placement)
        artifacts.update(saved.artifacts)
        manifest = self._manifest(setup, config, compiled, saved)
        if quantization is not None:
            manifest["quantization"] = quantization
        return BuildResult(artifacts, manifest)

    def _setup(self, config: BuildConfig) -> _Setup:
        """Import torch-tensorrt and map the request to the installed API's compile arguments."""
        torch_tensorrt = import_torch_tensorrt()
        options = self.options_of(config)
        target = gpu_targets.get_target(config.target)
        versions = api.detect_versions()
        generation = api.generation_of_signature(set(inspect.signature(torch_tensorrt.dynamo.compile).parameters))
        if generation != versions.generation:
            log.info(f"note: torch-tensorrt {versions.torch_tensorrt} has the {generation} API (its signature decides)")
        workspace_mb = options.workspace_mb if options.workspace_mb is not None else target.workspace_mb
        arguments = api.compile_arguments(
            generation,
            config.precision,
            dla_core=options.dla_core,
            workspace_mb=workspace_mb,
            optimization_level=options.optimization_level,
        )
        plan = api.precision_plan(generation, config.precision)
        return _Setup(torch_tensorrt, target, versions, generation, plan, arguments, options, workspace_mb)

    def _compile(self, setup: _Setup, config: BuildConfig, program, example: torch.Tensor) -> _Compiled:
        """``torch_tensorrt.dynamo.compile`` of ``program``, with TensorRT's placement report captured."""
        torch_tensorrt = setup.torch_tensorrt
        device_spec, device_kwargs = setup.arguments.device
        kwargs = dict(setup.arguments.kwargs, device=torch_tensorrt.Device(device_spec, **device_kwargs))
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
        with torch.no_grad():
            expected = compiled(example).float()
        job = CompileJob(torch_tensorrt, program, inputs, kwargs, compiled, example, expected)
        return _Compiled(job, seconds, layer_placement(trt_log.lines), len(engines), fallback)

    def _manifest(self, setup: _Setup, config: BuildConfig, compiled: _Compiled, saved: SavedFormats) -> dict:
        """The ``tensorrt`` section and ``requires`` of the bundle's manifest."""
        arguments, options, versions = setup.arguments, setup.options, setup.versions
        gpu = hostinfo.gpu_info()
        section = {
            "versions": {**versions.to_manifest(), "api": setup.generation, "modelopt": hostinfo.package_version("modelopt")},
            "precision": setup.plan.to_manifest(),
            "target": setup.target.to_manifest(),
            "workspace_mb": setup.workspace_mb,
            "device": arguments.device[0],
            "dla": {"core": options.dla_core, "allow_gpu_fallback": True} if options.dla_core is not None else None,
            "compile_arguments": {k: (sorted(str(p) for p in v) if isinstance(v, set) else v) for k, v in arguments.kwargs.items()},
            "formats": {fmt: FORMATS[fmt] for fmt in options.formats},
            "engines": compiled.engines,
            "pytorch_ops": compiled.fallback,
            "layers": saved.placement,
            "engine_io": saved.engine_io,
            "save_check_max_rel_diff": saved.checks,
            "compile_seconds": compiled.seconds,
            "cpp": "model.ts loads in libtorch C++ with libtorchtrt_runtime.so linked; model.engine with nvinfer alone",
            "note": "saved modules load only with the torch-tensorrt and TensorRT versions above, on this GPU model",
        }
        requires = {
            "device": "cuda",
            "gpu": {"name": gpu["name"], "compute_capability": gpu["compute_capability"]} if gpu else None,
            "tensorrt": versions.tensorrt,
            "fused_ops": bool(config.fused),
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

    def load(self, bundle_dir: Path, manifest: dict, device: str = "auto") -> Predictor:
        bundle_dir = Path(bundle_dir)
        device = str(device)
        if device not in ("auto", "cuda") and not device.startswith("cuda"):
            raise CheckFailed(f"bundle {bundle_dir} is a TensorRT engine and runs on a CUDA GPU only, not on {device}")
        if not torch.cuda.is_available():
            raise CheckFailed(f"bundle {bundle_dir} is a TensorRT engine and needs a CUDA GPU; none is visible")
        self.check_versions(bundle_dir, manifest)
        torch_tensorrt = import_torch_tensorrt()
        cuda = torch.device("cuda", 0) if device == "auto" else torch.device(device)
        if manifest.get("requires", {}).get("fused_ops"):
            ok, reason = fused_ops_status()
            if not ok:
                raise CheckFailed(f"bundle {bundle_dir} uses the fused resnet_edge ops: {reason}")
        return load_predictor(torch_tensorrt, bundle_dir, manifest["artifacts"], cuda)

    def simulator(self, bundle_dir: Path, manifest: dict) -> Predictor | None:
        """INT8: the ModelOpt fake-quant model saved at build time, on the CPU: the engine's exact scales."""
        name = manifest.get("artifacts", {}).get("quantized_model")
        if manifest.get("precision") != "int8" or not name:
            return None
        return int8.load_simulator(Path(bundle_dir) / name, manifest)
