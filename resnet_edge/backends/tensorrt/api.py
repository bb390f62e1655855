"""The two live Torch-TensorRT API generations, and the ``dynamo.compile`` arguments for each.

Checked against the source of the torch-tensorrt wheels (``torch_tensorrt/dynamo/_compiler.py``,
``_defaults.py``, ``conversion/_TRTInterpreter.py``, ``_compile.py``) of 2.8.0, 2.9.0, 2.10.0,
2.12.0, 2.13.0 and 2.14.0:

``enabled_precisions`` generation (torch-tensorrt 2.8 .. 2.12, TensorRT 10.x)
    ``dynamo.compile(..., enabled_precisions={...}, use_explicit_typing=False)``: a weakly typed
    network; ``_TRTInterpreter`` turns ``torch.float16`` / ``torch.int8`` in ``enabled_precisions``
    into ``BuilderFlag.FP16`` / ``BuilderFlag.INT8`` and TensorRT picks each layer's kernel precision.
    Jetson Orin on JetPack 6 runs this generation (torch 2.8, torch-tensorrt 2.8, TensorRT 10.3, the
    jetson-ai-lab wheels). DLA engines are built by TensorRT's builder, not through these arguments:
    ``dla_routes`` picks the DLA build by TensorRT version (10.x flags and implicit INT8, 11.4.1+ strong typing).

``strongly_typed`` generation (torch-tensorrt >= 2.13, TensorRT 11)
    ``dynamo.compile`` has no ``enabled_precisions`` (an unknown keyword lands in ``**kwargs`` and is
    silently ignored) and ``_TRTInterpreter`` always creates the network with
    ``NetworkDefinitionCreationFlag.STRONGLY_TYPED``: every layer runs in the dtype of its tensors in
    the exported graph. FP16 therefore means a half-precision graph (here: the model cast to half
    between a float32 input cast and a float32 logits cast, so the engine's I/O stay float32), and
    INT8 means the explicit Q/DQ nodes ModelOpt put in the graph. (``enable_autocast=True`` is the
    other documented FP16 route; it decides per layer and may leave the logits in half.)

INT8 is explicit quantization in both: ``DataLoaderCalibrator``/``CacheCalibrator`` were removed in
2.9 and TensorRT 11 has no implicit INT8; see ``resnet_edge.quantize.modelopt_ptq``.
"""

from __future__ import annotations

import importlib.util
import inspect
import re
from dataclasses import dataclass, field

import torch

from ...core import hostinfo
from ...core.errors import UsageError

ENABLED_PRECISIONS = "enabled_precisions"
STRONGLY_TYPED = "strongly_typed"
MINIMUM_VERSION = (2, 8)
STRONGLY_TYPED_FROM = (2, 13)

DATACENTER_INSTALL = "pip install torch-tensorrt==2.14.0 (it brings TensorRT 11; torch must be 2.14.x)"
JETSON_INSTALL = "the JetPack 6 wheels of torch 2.8 and torch-tensorrt 2.8 from the jetson-ai-lab index (docs/jetson.md)"


def parse_version(text: str | None) -> tuple[int, ...] | None:
    """``"2.14.0+cu130"`` -> ``(2, 14, 0)``; ``None`` for ``None`` or text without a leading number."""
    if not text:
        return None
    numbers = []
    for part in text.split("+")[0].split("."):
        match = re.match(r"\d+", part)
        if not match:
            break
        numbers.append(int(match.group()))
        if match.end() != len(part):  # "0rc1", "0a0": keep the leading number, stop there
            break
    return tuple(numbers) or None


@dataclass(frozen=True)
class TrtVersions:
    """Versions read from package metadata: nothing is imported."""

    torch_tensorrt: str | None
    tensorrt: str | None
    torch: str

    @property
    def generation(self) -> str:
        return api_generation(self.torch_tensorrt)

    def to_manifest(self) -> dict:
        return {"torch_tensorrt": self.torch_tensorrt, "tensorrt": self.tensorrt, "torch": self.torch, "api": self.generation}


def detect_versions() -> TrtVersions:
    """torch-tensorrt, TensorRT and torch versions installed here (``None`` for a missing package)."""
    return TrtVersions(hostinfo.package_version("torch_tensorrt"), hostinfo.package_version("tensorrt"), torch.__version__)


def api_generation(torch_tensorrt_version: str | None) -> str:
    """``"enabled_precisions"`` (2.8 .. 2.12) or ``"strongly_typed"`` (>= 2.13) for a torch-tensorrt version.

    A ``UsageError`` when it is missing or older than 2.8 (the first release whose dynamo path takes
    ModelOpt's Q/DQ graphs and has Jetson wheels).
    """
    version = parse_version(torch_tensorrt_version)
    if version is None:
        raise UsageError(f"torch-tensorrt is not installed; on a datacenter GPU: {DATACENTER_INSTALL}; on Jetson Orin: {JETSON_INSTALL}")
    if version[:2] < MINIMUM_VERSION:
        raise UsageError(
            f"torch-tensorrt {torch_tensorrt_version} is older than 2.8, the oldest release this backend supports; "
            f"upgrade ({DATACENTER_INSTALL}; JetPack 6: {JETSON_INSTALL})"
        )
    return STRONGLY_TYPED if version[:2] >= STRONGLY_TYPED_FROM else ENABLED_PRECISIONS


def generation_of_signature(parameters: set[str] | list[str]) -> str:
    """The generation a ``dynamo.compile`` signature belongs to: the authoritative check at build time."""
    return ENABLED_PRECISIONS if "enabled_precisions" in parameters else STRONGLY_TYPED


@dataclass
class PrecisionPlan:
    """How one precision is expressed for one API generation.

    ``graph_dtype``: the dtype the exported graph computes in (the engine input stays float32 either
    way). ``enabled_precisions``: the builder precisions, or ``None`` where the API has none.
    """

    precision: str
    generation: str
    graph_dtype: torch.dtype
    enabled_precisions: set[torch.dtype] | None
    description: str

    def to_manifest(self) -> dict:
        return {
            "api": self.generation,
            "graph_dtype": str(self.graph_dtype).replace("torch.", ""),
            "enabled_precisions": sorted(str(p).replace("torch.", "") for p in self.enabled_precisions) if self.enabled_precisions else None,
            "how": self.description,
        }


def precision_plan(generation: str, precision: str) -> PrecisionPlan:
    """The precision mapping for ``generation`` (see the module docstring)."""
    if precision not in ("fp32", "fp16", "int8"):
        raise UsageError(f"the tensorrt backend builds fp32, fp16 or int8, not {precision!r}")
    if generation == ENABLED_PRECISIONS:
        precisions = {
            "fp32": {torch.float32},
            "fp16": {torch.float32, torch.float16},
            # Q/DQ layers pin the quantized convs to INT8; FP16 lets TensorRT run what is left in half.
            "int8": {torch.float32, torch.float16, torch.int8},
        }[precision]
        how = {
            "fp32": "weakly typed network, FP32 kernels",
            "fp16": "weakly typed network with BuilderFlag.FP16: TensorRT picks FP16 kernels where they are faster",
            "int8": "explicit Q/DQ from ModelOpt, BuilderFlag.INT8 and FP16 for the layers left unquantized",
        }[precision]
        return PrecisionPlan(precision, generation, torch.float32, precisions, how)
    if generation == STRONGLY_TYPED:
        if precision == "fp16":
            return PrecisionPlan(precision, generation, torch.float16, None, "strongly typed: the graph is cast to half between float32 I/O casts")
        how = "strongly typed: float32 graph" if precision == "fp32" else "strongly typed: ModelOpt's explicit Q/DQ set INT8, the rest of the graph is float32"
        return PrecisionPlan(precision, generation, torch.float32, None, how)
    raise ValueError(f"unknown torch-tensorrt API generation {generation!r}")


@dataclass
class CompileArguments:
    """The keyword arguments for ``torch_tensorrt.dynamo.compile`` (and the raw-engine converter).

    ``device`` is a spec for ``torch_tensorrt.Device``: ``("cuda:0", {})`` or ``("dla:1",
    {"allow_gpu_fallback": True})``; the caller builds the object, so this stays importable without
    torch-tensorrt.
    """

    kwargs: dict
    device: tuple[str, dict]
    notes: list[str] = field(default_factory=list)


def compile_arguments(
    generation: str,
    precision: str,
    *,
    gpu_id: int = 0,
    dla_core: int | None = None,
    workspace_mb: int | None = None,
    min_block_size: int = 1,
    require_full_compilation: bool = False,
    optimization_level: int | None = None,
    tf32: bool = False,
    hardware_compatible: bool = False,
    timing_cache_path: str | None = None,
) -> CompileArguments:
    """Map a build request to ``dynamo.compile`` keywords for ``generation``.

    Keywords present in both generations (checked in both ``_compiler.py``): ``device``,
    ``workspace_size`` (bytes), ``min_block_size``, ``require_full_compilation``,
    ``optimization_level``, ``truncate_double``, ``timing_cache_path``, ``hardware_compatible``. Only
    the ``enabled_precisions`` generation gets ``enabled_precisions`` and ``use_explicit_typing``.
    FP32 gets ``disable_tf32=True`` unless ``tf32`` (torch-tensorrt's default, False, lets TensorRT run
    FP32 convolutions in TF32). Keywords in ``OPTIONAL_KEYWORDS`` are dropped at build time where the
    installed function lacks them (``drop_optional_keywords``) and the manifest says so.
    """
    plan = precision_plan(generation, precision)
    kwargs: dict = {
        "min_block_size": min_block_size,
        "require_full_compilation": require_full_compilation,
        "truncate_double": True,
    }
    notes = [plan.description]
    if workspace_mb is not None:
        if workspace_mb < 1:
            raise UsageError(f"--workspace-mb must be at least 1, got {workspace_mb}")
        kwargs["workspace_size"] = int(workspace_mb) << 20
    if optimization_level is not None:
        if not 0 <= optimization_level <= 5:
            raise UsageError(f"the TensorRT builder optimization level is 0..5, got {optimization_level}")
        kwargs["optimization_level"] = optimization_level
    if generation == ENABLED_PRECISIONS:
        kwargs["enabled_precisions"] = set(plan.enabled_precisions or ())
        kwargs["use_explicit_typing"] = False
    if precision == "fp32":
        kwargs["disable_tf32"] = not tf32
        notes.append("TF32 allowed (--tf32)" if tf32 else "TF32 disabled: true FP32 kernels")
    if hardware_compatible:
        kwargs["hardware_compatible"] = True
    if timing_cache_path:
        kwargs["timing_cache_path"] = str(timing_cache_path)
    if dla_core is not None:
        if precision == "fp32":
            raise UsageError("--dla-core needs --fp16 or --int8: the DLA runs FP16 and INT8 layers only")
        if generation == STRONGLY_TYPED:
            notes.append("DLA with a strongly typed network needs a TensorRT 11 build for Jetson that has DLA support")
        device = (f"dla:{dla_core}", {"allow_gpu_fallback": True})
    else:
        device = (f"cuda:{gpu_id}", {})
    return CompileArguments(kwargs, device, notes)


def check_keywords(function, kwargs: dict, name: str) -> None:
    """Refuse, before a long build, keywords ``function`` does not take (API drift between releases).

    Functions with ``**kwargs`` would swallow a misspelt or removed option silently, so the check is
    against the named parameters.
    """
    parameters = {
        p.name for p in inspect.signature(function).parameters.values() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    }
    unknown = sorted(set(kwargs) - parameters)
    if unknown:
        raise UsageError(
            f"{name} of the installed torch-tensorrt does not take {', '.join(unknown)}; this resnet-edge was "
            f"written for torch-tensorrt 2.8-2.12 and 2.13-2.14: install one of those"
        )


def torch_tensorrt_importable() -> bool:
    """Whether ``import torch_tensorrt`` can be attempted (the package is on the path); imports nothing."""
    return importlib.util.find_spec("torch_tensorrt") is not None



# Keywords a build passes when the installed function has them, and otherwise drops (recorded): the
# 2.8 wheel's convert_exported_program_to_serialized_trt_engine has neither disable_tf32 nor
# hardware_compatible (its **kwargs would swallow them silently). A requested hardware_compatible never
# gets this far where a function lacks it: check_hardware_compatible_keywords refuses the build first.
OPTIONAL_KEYWORDS = ("disable_tf32", "hardware_compatible", "timing_cache_path")
HARDWARE_COMPATIBLE_MIN_CC = (8, 0)  # TensorRT's AMPERE_PLUS hardware compatibility level


def drop_optional_keywords(kwargs: dict, function) -> list[str]:
    """Remove from ``kwargs`` the ``OPTIONAL_KEYWORDS`` that ``function`` does not take; their names."""
    parameters = set(inspect.signature(function).parameters)
    dropped = [name for name in OPTIONAL_KEYWORDS if name in kwargs and name not in parameters]
    for name in dropped:
        del kwargs[name]
    return dropped


def manifest_arguments(kwargs: dict, dropped: list[str] = ()) -> dict:
    """The compile keywords as the manifest records them (sets sorted, the timing cache by file name)."""
    recorded = {}
    for key, value in kwargs.items():
        if key in dropped:
            continue
        if isinstance(value, set):
            value = sorted(str(p) for p in value)
        elif key == "timing_cache_path":
            value = value.rsplit("/", 1)[-1]
        recorded[key] = value
    return recorded


def tf32_state(precision: str, tf32: bool, dropped: list[str] = ()) -> str:
    """The manifest's ``tensorrt.tf32``: ``"disabled"``, ``"allowed"`` (--tf32 or a release without
    ``disable_tf32``) or ``"n/a"`` (FP16 / INT8 builds, whose float layers TensorRT may run in TF32)."""
    if precision != "fp32":
        return "n/a"
    return "allowed" if tf32 or "disable_tf32" in dropped else "disabled"


def check_hardware_compatible(requested: bool, gpu: dict | None, dla_core: int | None) -> None:
    """``--hardware-compatible`` needs an Ampere-or-newer GPU (TensorRT's AMPERE_PLUS level) and no DLA."""
    if not requested:
        return
    if dla_core is not None:
        raise UsageError("--hardware-compatible and --dla-core exclude each other: a DLA engine is tied to its DLA")
    cc = parse_version((gpu or {}).get("compute_capability"))
    if cc is not None and cc[:2] < HARDWARE_COMPATIBLE_MIN_CC:
        raise UsageError(
            f"--hardware-compatible needs an Ampere or newer GPU (compute capability 8.0+); this one is {gpu['compute_capability']}"
        )


def check_hardware_compatible_keywords(requested: bool, torch_tensorrt, formats, version: str | None) -> None:
    """``--hardware-compatible`` only where every installed function building a saved file takes the keyword
    (torch-tensorrt 2.8's raw-engine converter does not: its engine would silently stay tied to this GPU)."""
    if not requested:
        return
    functions = {"dynamo.compile": torch_tensorrt.dynamo.compile}
    if "engine" in formats:
        functions["convert_exported_program_to_serialized_trt_engine (model.engine)"] = (
            torch_tensorrt.dynamo.convert_exported_program_to_serialized_trt_engine)
    lacking = [name for name, function in functions.items() if "hardware_compatible" not in inspect.signature(function).parameters]
    if lacking:
        raise UsageError(
            f"--hardware-compatible: torch-tensorrt {version}'s {lacking[0]} has no hardware_compatible keyword, so the "
            f"engine would be tied to this GPU; drop --hardware-compatible" + (", or leave 'engine' out of the formats" if "engine" in lacking[0] else "")
        )
