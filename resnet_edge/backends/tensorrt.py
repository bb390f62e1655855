"""TensorRT backend: Torch-TensorRT (``ir="dynamo"``) engines for Jetson and datacenter GPUs.

Build (on the GPU that will run the engine; see ``resnet_edge.core.targets``):

1. BatchNorm is folded into the convolutions (``fold_batchnorm``), or with ``--fused`` the blocks are
   swapped for the ``resnet_edge::`` ops, whose Torch-TensorRT converters
   (``resnet_edge.ops.tensorrt_converters``) are imported first. INT8 with ``--fused`` swaps the
   blocks after calibration, for ``resnet_edge::int8_residual_block`` ops that carry the ranges.
2. INT8: ModelOpt calibrates the folded model on the calibration images and inserts explicit Q/DQ,
   the residual adds included (``resnet_edge.quantize.modelopt_ptq``); the quantized model is saved
   with ``modelopt.torch.opt.save`` so the CPU can simulate the engine's exact scales later.
3. ``torch.export`` (INT8: under ModelOpt's ``export_torch_mode``) with a dynamic batch dimension
   when ``--dynamic-batch`` is given, then ``torch_tensorrt.dynamo.compile`` with the arguments of
   the installed API generation (``tensorrt_api``): ``enabled_precisions`` on torch-tensorrt 2.8-2.12
   (JetPack 6), a strongly typed graph on 2.13+ (TensorRT 11).
4. Saved three ways (``options["formats"]`` picks): ``model.ts`` via ``torch_tensorrt.save(...,
   output_format="torchscript")``, role ``model``, for libtorch C++ apps linking
   ``libtorchtrt_runtime`` (an ExportedProgram cannot be loaded from C++); ``model.ep`` via
   ``output_format="exported_program"`` for Python; and ``model.engine``, the plain TensorRT plan
   from ``convert_exported_program_to_serialized_trt_engine`` for DeepStream / pure TensorRT apps
   (``tensorrt_runner.EngineRunner`` runs it from Python). Each file is loaded back and compared
   with the compiled module before the bundle is written.

A saved module only loads with the torch-tensorrt and TensorRT versions that built it: the manifest
records them (``tensorrt.versions``, ``requires.tensorrt``) and ``load`` refuses a mismatch.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import io
import logging
import re
import time
import warnings
from pathlib import Path

import torch
from torch import nn

from ..core import hostinfo
from ..core import targets as gpu_targets
from ..core.errors import CheckFailed, UsageError
from . import tensorrt_api as api
from .base import Backend, BatchSpec, BuildConfig, BuildResult, Predictor, fold_batchnorm

TORCHSCRIPT_FILE = "model.ts"
EXPORTED_PROGRAM_FILE = "model.ep"
ENGINE_FILE = "model.engine"
MODELOPT_FILE = "modelopt_int8.pth"
FORMATS = {"torchscript": TORCHSCRIPT_FILE, "exported_program": EXPORTED_PROGRAM_FILE, "engine": ENGINE_FILE}
DEFAULT_FORMATS = ("torchscript", "exported_program", "engine")
TRT_LOG_NAME = "torch_tensorrt [TensorRT Conversion Context]"  # torch_tensorrt/logging.py, 2.8 and 2.14
SAVE_CHECK_TOLERANCE = 1e-3


class FloatIO(nn.Module):
    """float32 in, ``dtype`` inside, float32 logits out: how a strongly typed FP16 graph keeps float32 I/O."""

    def __init__(self, model: nn.Module, dtype: torch.dtype) -> None:
        super().__init__()
        self.model = model
        self.dtype = dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.to(self.dtype)).float()


def import_torch_tensorrt():
    """``import torch_tensorrt`` (it prints and warns a lot on import); a ``UsageError`` when it fails."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import torch_tensorrt
    except Exception as error:  # ImportError, or a missing libnvinfer / CUDA runtime raising OSError
        raise UsageError(
            f"torch-tensorrt cannot be imported ({type(error).__name__}: {str(error).splitlines()[0][:200]}); "
            f"on a datacenter GPU: {api.DATACENTER_INSTALL}; on Jetson Orin: {api.JETSON_INSTALL}"
        ) from None
    return torch_tensorrt


def require_gpu(target: gpu_targets.Target, gpu: dict | None) -> None:
    """Refuse a build without a CUDA GPU, or on a GPU that is not ``target``'s (``targets.check_gpu``)."""
    gpu_targets.check_gpu(target, gpu)


def require_torch_tensorrt(versions: api.TrtVersions) -> str:
    """The API generation of the installed torch-tensorrt; a ``UsageError`` saying what to install otherwise."""
    generation = api.api_generation(versions.torch_tensorrt)
    if versions.tensorrt is None:
        raise UsageError(f"torch-tensorrt {versions.torch_tensorrt} is installed but TensorRT's Python package is not; reinstall torch-tensorrt")
    torch_version = api.parse_version(versions.torch)
    trt_torch = api.parse_version(versions.torch_tensorrt)
    if torch_version and trt_torch and torch_version[:2] != trt_torch[:2]:
        raise UsageError(
            f"torch-tensorrt {versions.torch_tensorrt} needs torch {trt_torch[0]}.{trt_torch[1]}.x but torch {versions.torch} is "
            f"installed; install the pair (torch 2.14 + torch-tensorrt 2.14, or JetPack 6's torch 2.8 + torch-tensorrt 2.8)"
        )
    return generation


def check_dla_support(generation: str, versions: api.TrtVersions, dla_core: int | None, available_cores: int | None) -> None:
    """TensorRT 11 has no DLA except in the newest JetPack: refuse a DLA build it cannot do."""
    if dla_core is None:
        return
    major = (api.parse_version(versions.tensorrt) or (0,))[0]
    if major >= 11 and not available_cores:
        raise UsageError(
            f"--dla-core: TensorRT {versions.tensorrt} reports no DLA on this device (TensorRT 11 has DLA only in the newest "
            f"JetPack); on JetPack 6 use torch-tensorrt 2.8 with TensorRT 10.3, or drop --dla-core to run on the GPU"
        )


def dla_core_count() -> int | None:
    """NVDLA cores TensorRT's builder sees here (0 on datacenter GPUs), or None when TensorRT cannot be asked."""
    try:
        import tensorrt as trt

        return int(trt.Builder(trt.Logger(trt.Logger.ERROR)).num_DLA_cores)
    except Exception:
        return None


def fused_ops_status() -> tuple[bool, str]:
    """Whether the fused ops and their Torch-TensorRT converters can be used, and why not."""
    import importlib.util

    if importlib.util.find_spec("resnet_edge.fuse") is None:
        return False, "resnet_edge.fuse is not in this build"
    if importlib.util.find_spec("resnet_edge.ops.tensorrt_converters") is None:
        return False, "the Torch-TensorRT converters of the fused ops (resnet_edge.ops.tensorrt_converters) are not in this build"
    try:
        import resnet_edge.ops  # noqa: F401  (loads the compiled extension)
    except Exception as error:
        return False, f"the fused ops cannot be loaded ({type(error).__name__}: {error})"
    return True, "fused ops and their TensorRT converters available"


def example_batch(batch: BatchSpec) -> int:
    """The batch size to export with: ``opt``, but at least 2 for a dynamic batch (export specialises on 1)."""
    if batch.static:
        return batch.opt
    return min(max(batch.opt, 2), batch.max)


def export_program(model: nn.Module, example: torch.Tensor, batch: BatchSpec) -> torch.export.ExportedProgram:
    """``torch.export`` (non-strict, as ``torch_tensorrt.dynamo.trace`` does) with a dynamic dim 0 if asked."""
    dynamic_shapes = None
    if not batch.static:
        dynamic_shapes = ({0: torch.export.Dim("batch", min=batch.min, max=batch.max)},)
    with torch.no_grad():
        return torch.export.export(model, (example,), dynamic_shapes=dynamic_shapes, strict=False)


class _LogCapture(logging.Handler):
    """Keeps the layer-placement lines TensorRT's builder logs through torch-tensorrt's logger."""

    KEEP = ("Layers Running on", "[DlaLayer]", "[GpuLayer]")

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if any(key in message for key in self.KEEP):
            self.lines.append(message)


@contextlib.contextmanager
def capture_tensorrt_log():
    """During a build, collect TensorRT's placement report (INFO or VERBOSE, depending on the release)."""
    logger = logging.getLogger(TRT_LOG_NAME)
    handler = _LogCapture()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)  # torch-tensorrt maps TensorRT's VERBOSE to DEBUG
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def layer_placement(lines: list[str]) -> dict | None:
    """Parse TensorRT's "Layers Running on DLA / GPU" report from its builder log.

    TensorRT logs (INFO) ``---------- Layers Running on DLA ----------`` followed by ``[DlaLayer] ...``
    lines, then the same for the GPU with ``[GpuLayer] ...``. ``None`` when the log has no report.
    """
    dla, gpu = [], []
    for line in lines:
        for text in line.splitlines():
            match = re.search(r"\[(DlaLayer|GpuLayer)\]\s*(.+)", text)
            if match:
                (dla if match.group(1) == "DlaLayer" else gpu).append(match.group(2).strip())
    if not dla and not gpu:
        return None
    return {"reported_by": "TensorRT builder log", "dla": dla, "gpu": gpu, "dla_count": len(dla), "gpu_count": len(gpu)}


def trt_submodules(module: nn.Module) -> list[tuple[str, nn.Module]]:
    """The TensorRT engine modules of a compiled graph (``TorchTensorRTModule`` and its Python twin)."""
    return [(name, sub) for name, sub in module.named_modules() if type(sub).__name__ in ("TorchTensorRTModule", "PythonTorchTensorRTModule")]


def torch_fallback_ops(module: nn.Module) -> list[str]:
    """Graph operators that run in PyTorch, outside any TensorRT engine (empty when fully converted)."""
    graph = getattr(module, "graph", None)
    if graph is None:
        return []
    engines = {name for name, _ in trt_submodules(module)}
    fallback = []
    for node in graph.nodes:
        if node.op == "call_function" and "getitem" not in str(node.target):
            fallback.append(str(node.target))
        elif node.op == "call_module" and node.target not in engines:
            fallback.append(str(node.target))
    return sorted(set(fallback))


def _max_rel_diff(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return float((actual.float() - expected.float()).abs().max() / expected.float().abs().max().clamp(min=1e-12))


class TensorRTBackend(Backend):
    name = "tensorrt"
    precisions = ("fp32", "fp16", "int8")
    targets = tuple(gpu_targets.GPU_TARGETS)
    can_fuse = True
    build_options = ("workspace_mb", "dla_core")

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
        target = gpu_targets.get_target(config.target)
        require_gpu(target, hostinfo.gpu_info())
        versions = api.detect_versions()
        generation = require_torch_tensorrt(versions)
        cores = dla_core_count() if config.dla_core is not None else None
        gpu_targets.check_dla(target, config.dla_core, config.precision, cores)
        check_dla_support(generation, versions, config.dla_core, cores)
        api.compile_arguments(generation, config.precision, dla_core=config.dla_core, workspace_mb=config.workspace_mb)
        formats = tuple(config.options.get("formats", DEFAULT_FORMATS))
        unknown = [f for f in formats if f not in FORMATS]
        if unknown or not formats:
            raise UsageError(f"unknown TensorRT output format(s) {unknown or formats}; choose from: {', '.join(FORMATS)}")
        if config.precision == "int8":
            from ..quantize import modelopt_ptq

            modelopt_ptq.require_modelopt()
            method = config.calibration.method if config.calibration is not None else None
            if method is not None and method not in modelopt_ptq.CALIBRATION_METHODS:
                raise UsageError(f"calibration method {method!r} is not one ModelOpt offers; choose one of: {', '.join(modelopt_ptq.CALIBRATION_METHODS)}")
        if config.fused:
            ok, reason = fused_ops_status()
            if not ok:
                raise UsageError(f"--fused needs the fused ops: {reason}; pass --no-fused")

    # --------------------------------------------------------------------------------------- build
    def build(self, model: nn.Module, config: BuildConfig, out_dir: Path) -> BuildResult:
        torch_tensorrt = import_torch_tensorrt()
        out_dir = Path(out_dir)
        target = gpu_targets.get_target(config.target)
        versions = api.detect_versions()
        signature = inspect.signature(torch_tensorrt.dynamo.compile).parameters
        generation = api.generation_of_signature(set(signature))
        if generation != versions.generation:
            config.log(f"note: torch-tensorrt {versions.torch_tensorrt} has the {generation} API (its signature decides)")
        workspace_mb = config.workspace_mb if config.workspace_mb is not None else target.workspace_mb
        arguments = api.compile_arguments(
            generation,
            config.precision,
            dla_core=config.dla_core,
            workspace_mb=workspace_mb,
            optimization_level=config.options.get("optimization_level"),
        )
        plan = api.precision_plan(generation, config.precision)
        device_spec, device_kwargs = arguments.device
        trt_device = torch_tensorrt.Device(device_spec, **device_kwargs)
        cuda = torch.device("cuda", 0)
        formats = tuple(config.options.get("formats", DEFAULT_FORMATS))

        # 1. The graph to compile.
        if config.fused:
            import resnet_edge.ops.tensorrt_converters  # noqa: F401  (registers the converters)
        if config.fused and config.precision != "int8":
            from resnet_edge.fuse import fuse_model

            config.log("fusing blocks into resnet_edge ops")
            prepared = fuse_model(model.eval())  # a fused copy; model stays as it is
        else:
            # INT8 calibrates the folded model; with --fused its blocks are swapped after calibration.
            prepared = fold_batchnorm(model)
        prepared = prepared.to(cuda).eval()
        batch = config.batch
        example = config.example_input(example_batch(batch)).to(cuda)
        artifacts: dict[str, str] = {}
        quantization = None
        if config.precision == "int8":
            from ..quantize import modelopt_ptq

            options = config.options
            ptq_config = modelopt_ptq.PTQConfig(
                method=config.calibration.method,
                per_channel_weights=options.get("per_channel_weights", True),
                quantize_residual=options.get("quantize_residual", True),
                keep_fp=tuple(options.get("keep_fp", ())),
            )
            config.log(f"calibrating INT8 ranges with ModelOpt ({ptq_config.method}) on {config.calibration.num_images} images")
            started = time.time()
            quantized = modelopt_ptq.calibrate(prepared, config.calibration, ptq_config, device=cuda)
            config.log(f"calibrated {len(modelopt_ptq.quantized_layers(quantized))} layers in {time.time() - started:.1f}s")
            save_quantized(quantized, out_dir / MODELOPT_FILE)
            artifacts["quantized_model"] = MODELOPT_FILE
            quantization = modelopt_ptq.quantization_manifest(quantized, ptq_config)
            if config.fused:
                from resnet_edge.fuse.int8 import fuse_quantized_model

                config.log("fusing calibrated blocks into resnet_edge::int8_residual_block ops (Q/DQ carried)")
                quantized = fuse_quantized_model(quantized)
            program = modelopt_ptq.export_for_tensorrt(
                quantized, example, None if batch.static else (batch.min, batch.opt, batch.max)
            )
            blocks = ""
            if config.fused:
                from resnet_edge.fuse.int8 import count_int8_blocks

                blocks = f" and {count_int8_blocks(program)} int8_residual_block ops"
            config.log(f"exported with {modelopt_ptq.count_qdq_nodes(program)} Q/DQ nodes{blocks}")
        else:
            graph = FloatIO(prepared.half(), torch.float16) if plan.graph_dtype == torch.float16 else prepared
            program = export_program(graph, example, batch)

        # 2. Compile.
        shape = tuple(config.input_shape)
        if batch.static:
            spec = torch_tensorrt.Input(shape=(batch.opt, *shape), dtype=torch.float32, name=config.input_name)
        else:
            spec = torch_tensorrt.Input(
                min_shape=(batch.min, *shape), opt_shape=(batch.opt, *shape), max_shape=(batch.max, *shape),
                dtype=torch.float32, name=config.input_name,
            )
        inputs = [spec]
        kwargs = dict(arguments.kwargs, device=trt_device)
        api.check_keywords(torch_tensorrt.dynamo.compile, kwargs, "torch_tensorrt.dynamo.compile")
        config.log(f"compiling with torch-tensorrt {versions.torch_tensorrt} ({generation}), TensorRT {versions.tensorrt}, {plan.description}")
        started = time.time()
        with capture_tensorrt_log() as log, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compiled = torch_tensorrt.dynamo.compile(program, arg_inputs=inputs, **kwargs)
        compile_seconds = round(time.time() - started, 1)
        placement = layer_placement(log.lines)
        engines = trt_submodules(compiled)
        fallback = torch_fallback_ops(compiled)
        config.log(f"built {len(engines)} TensorRT engine(s) in {compile_seconds}s" + (f"; in PyTorch: {', '.join(fallback)}" if fallback else ""))
        with torch.no_grad():
            expected = compiled(example).float()

        # 3. Save each format and load it back.
        checks: dict[str, float] = {}
        if "torchscript" in formats:
            path = out_dir / TORCHSCRIPT_FILE
            torch_tensorrt.save(compiled, str(path), output_format="torchscript", arg_inputs=[example])
            reloaded = torch.jit.load(str(path), map_location=cuda).eval()
            checks["torchscript"] = self._compare(reloaded, example, expected, "torchscript")
            artifacts["model"] = TORCHSCRIPT_FILE
        if "exported_program" in formats:
            path = out_dir / EXPORTED_PROGRAM_FILE
            torch_tensorrt.save(compiled, str(path), output_format="exported_program", arg_inputs=[example])
            reloaded = torch_tensorrt.load(str(path)).module()
            checks["exported_program"] = self._compare(reloaded, example, expected, "exported_program")
            artifacts["exported_program"] = EXPORTED_PROGRAM_FILE
            artifacts.setdefault("model", EXPORTED_PROGRAM_FILE)
        engine_io = None
        if "engine" in formats:
            convert = torch_tensorrt.dynamo.convert_exported_program_to_serialized_trt_engine
            engine_kwargs = dict(kwargs)
            if "output_binding_names" in inspect.signature(convert).parameters:  # torch-tensorrt >= 2.13
                # Shaped like the program's args (a 1-tuple) and output (one tensor: a plain string).
                engine_kwargs.update(arg_input_binding_names=(config.input_name,), output_binding_names=config.output_name)
            api.check_keywords(convert, engine_kwargs, "convert_exported_program_to_serialized_trt_engine")
            config.log("serializing the raw TensorRT engine")
            with capture_tensorrt_log() as engine_log, warnings.catch_warnings():
                warnings.simplefilter("ignore")
                serialized = convert(program, arg_inputs=inputs, **engine_kwargs)
            placement = placement or layer_placement(engine_log.lines)
            (out_dir / ENGINE_FILE).write_bytes(bytes(serialized))
            from .tensorrt_runner import EngineRunner

            with EngineRunner(out_dir / ENGINE_FILE) as runner:
                engine_io = {
                    "input": runner.input_name,
                    "output": runner.output_name,
                    "input_dtype": str(runner.input_dtype),
                    "output_dtype": str(runner.output_dtype),
                    "batch": {"min": int(runner.min_batch), "max": int(runner.max_batch)},
                }
                logits = torch.from_numpy(runner(example.cpu().numpy())).to(cuda)
            checks["engine"] = round(_max_rel_diff(logits, expected), 6)
            if checks["engine"] > self._tolerance(config.precision):
                raise CheckFailed(f"the raw engine disagrees with the compiled module (max relative diff {checks['engine']})")
            artifacts["engine"] = ENGINE_FILE
            artifacts.setdefault("model", ENGINE_FILE)

        gpu = hostinfo.gpu_info()
        section = {
            "versions": {**versions.to_manifest(), "api": generation, "modelopt": hostinfo.package_version("modelopt")},
            "precision": plan.to_manifest(),
            "target": target.to_manifest(),
            "workspace_mb": workspace_mb,
            "device": device_spec,
            "dla": {"core": config.dla_core, "allow_gpu_fallback": True} if config.dla_core is not None else None,
            "compile_arguments": {k: (sorted(str(p) for p in v) if isinstance(v, set) else v) for k, v in arguments.kwargs.items()},
            "formats": {fmt: FORMATS[fmt] for fmt in formats},
            "engines": len(engines),
            "pytorch_ops": fallback,
            "layers": placement,
            "engine_io": engine_io,
            "save_check_max_rel_diff": checks,
            "compile_seconds": compile_seconds,
            "cpp": "model.ts loads in libtorch C++ with libtorchtrt_runtime.so linked; model.engine with nvinfer alone",
            "note": "saved modules load only with the torch-tensorrt and TensorRT versions above, on this GPU model",
        }
        manifest = {
            "tensorrt": section,
            "requires": {
                "device": "cuda",
                "gpu": {"name": gpu["name"], "compute_capability": gpu["compute_capability"]} if gpu else None,
                "tensorrt": versions.tensorrt,
                "fused_ops": bool(config.fused),
            },
        }
        if quantization is not None:
            manifest["quantization"] = quantization
        return BuildResult(artifacts, manifest)

    @staticmethod
    def _tolerance(precision: str) -> float:
        # A reloaded module runs the very same engine; the raw engine is a second build whose kernel
        # choices may differ, which is visible in FP16/INT8 rounding.
        return SAVE_CHECK_TOLERANCE if precision == "fp32" else 0.05

    def _compare(self, module, example: torch.Tensor, expected: torch.Tensor, what: str) -> float:
        with torch.no_grad():
            diff = _max_rel_diff(module(example), expected)
        if diff > SAVE_CHECK_TOLERANCE:
            raise CheckFailed(f"the saved {what} module disagrees with the compiled one after reloading (max relative diff {diff:.3g})")
        return round(diff, 6)

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
        if device not in ("auto", "cuda") and not str(device).startswith("cuda"):
            raise CheckFailed(f"bundle {bundle_dir} is a TensorRT engine and runs on a CUDA GPU only, not on {device}")
        if not torch.cuda.is_available():
            raise CheckFailed(f"bundle {bundle_dir} is a TensorRT engine and needs a CUDA GPU; none is visible")
        self.check_versions(bundle_dir, manifest)
        torch_tensorrt = import_torch_tensorrt()
        artifacts = manifest["artifacts"]
        cuda = torch.device("cuda", 0) if device == "auto" else torch.device(device)
        if manifest.get("requires", {}).get("fused_ops"):
            import resnet_edge.ops  # noqa: F401
        if "exported_program" in artifacts:
            module = torch_tensorrt.load(str(bundle_dir / artifacts["exported_program"])).module()
        elif artifacts["model"].endswith(".ts"):
            module = torch.jit.load(str(bundle_dir / artifacts["model"]), map_location=cuda).eval()
        else:
            from .tensorrt_runner import EngineRunner

            runner = EngineRunner(bundle_dir / artifacts["model"], device=cuda.index or 0)

            def run_engine(batch: torch.Tensor) -> torch.Tensor:
                return torch.from_numpy(runner(batch.float().cpu().numpy()))

            run_engine.runner = runner  # type: ignore[attr-defined]
            return run_engine

        def predict(batch: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                return module(batch.to(cuda, torch.float32)).float().cpu()

        predict.module = module  # type: ignore[attr-defined]
        return predict

    def simulator(self, bundle_dir: Path, manifest: dict) -> Predictor | None:
        """INT8: the ModelOpt fake-quant model saved at build time, on the CPU: the engine's exact scales."""
        name = manifest.get("artifacts", {}).get("quantized_model")
        if manifest.get("precision") != "int8" or not name:
            return None
        return load_simulator(Path(bundle_dir) / name, manifest)


def save_quantized(quantized: nn.Module, path: Path) -> None:
    """Save a calibrated model with ``modelopt.torch.opt.save`` (weights, quantizer state and ranges), from the CPU."""
    import modelopt.torch.opt as mto

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mto.save(copy.deepcopy(quantized).cpu(), str(path))


def load_simulator(path: Path, manifest: dict) -> Predictor:
    """Restore the calibrated fake-quant model from ``modelopt_int8.pth`` as a CPU predictor."""
    from ..models import create_model
    from ..quantize import modelopt_ptq

    modelopt_ptq.require_modelopt()
    import modelopt.torch.opt as mto

    skeleton = fold_batchnorm(create_model(manifest["arch"], num_classes=manifest["num_classes"], shortcut=manifest.get("shortcut")))
    modelopt_ptq.register_residual_quantization()
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        model = mto.restore(skeleton, str(path), map_location="cpu", weights_only=False).eval()

    def predict(batch: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return model(batch.float().cpu()).float()

    predict.module = model  # type: ignore[attr-defined]
    return predict


__all__ = ["FloatIO", "TensorRTBackend", "layer_placement", "load_simulator", "save_quantized"]
