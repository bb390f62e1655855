"""INT8 post-training quantization with NVIDIA ModelOpt, in the explicit Q/DQ form TensorRT builds.

The flow (``examples/dynamo/vgg16_ptq.py`` in Torch-TensorRT is the reference):

1. ``calibrate(model, loader)``: ``mtq.quantize(copy, INT8 config, forward_loop)`` inserts
   ``TensorQuantizer`` modules (per-channel weights, per-tensor activations) and records each one's
   ``amax`` over the calibration batches ("max" calibration, or "mse"). The result is a *fake-quant*
   model: it runs anywhere, the CPU included, and rounds every quantized tensor to its INT8 grid, so
   its accuracy is what the INT8 engine will get (up to TensorRT's kernel choices).
2. ResNet blocks get one more quantizer, ``residual_quantizer``, on the shortcut input of the residual
   add. TensorRT can only fuse ``conv + add (+ relu)`` into one INT8 kernel when both add inputs carry
   Q/DQ (NVIDIA/TensorRT#1992, and TensorRT's "Q/DQ layer placement" guide); without it the add runs
   in FP32/FP16 and every block pays a re-quantization.
3. ``export_for_tensorrt(model, example)``: ``torch.export.export(strict=False)`` under ModelOpt's
   ``export_torch_mode()``. Every quantizer then appears in the graph as one
   ``torch.ops.tensorrt.quantize_op`` node, which Torch-TensorRT converts to an
   ``IQuantizeLayer``/``IDequantizeLayer`` pair. This needs the model and example on a CUDA device:
   ModelOpt's ``FakeTensorQuantFunction`` sends only CUDA tensors through the exportable
   ``tensorrt::quantize_op``; CPU tensors take its eager fallback, whose ``if min_amax < 0`` check is
   a data-dependent branch ``torch.export`` cannot trace. ``torch_tensorrt.dynamo.trace`` does the
   same (``export_torch_mode`` + ``strict=False``). TensorRT compiles on that GPU anyway.

Helpers for the sensitivity analysis and precision fallback of issue 6: ``quantized_layers``,
``disable_layers`` / ``enable_layers`` (by layer name, keeping each quantizer's ``amax`` so a layer
can be switched back on without recalibrating) and ``higher_precision_layers``.
"""

from __future__ import annotations

import contextlib
import copy
import fnmatch
import importlib
import importlib.metadata
import io
import logging
import warnings
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

import torch
from torch import nn

from ..core.errors import UsageError

MODELOPT_INSTALL = "pip install nvidia-modelopt==0.47.0 huggingface_hub==2.4.0 requests==2.34.2"
# "max"/"mse" are ModelOpt calibration algorithms; "entropy"/"percentile" use ModelOpt's
# HistogramCalibrator on the activations (weights keep per-channel max): TensorRT's classic
# entropy calibration, in explicit Q/DQ form.
CALIBRATION_METHODS = ("entropy", "max", "percentile", "mse")
HISTOGRAM_METHODS = ("entropy", "percentile")
RESIDUAL_QUANTIZER = "residual_quantizer"


# --------------------------------------------------------------------------------------------
# ModelOpt import and version


def modelopt_version() -> str | None:
    """The installed ``nvidia-modelopt`` version, or ``None``."""
    try:
        return importlib.metadata.version("nvidia-modelopt")
    except importlib.metadata.PackageNotFoundError:
        return None


def require_modelopt():
    """``modelopt.torch.quantization``; a ``UsageError`` saying what to install when it is missing.

    ModelOpt imports ``huggingface_hub`` and ``requests`` at import time without declaring them,
    so a bare ``pip install nvidia-modelopt`` can still fail here; the message names all three.
    """
    # ModelOpt imports torch.utils.cpp_extension, which logs "No CUDA runtime is found" on every CPU
    # host although nothing here builds ModelOpt's CUDA extensions.
    cpp_extension_log = logging.getLogger("torch.utils.cpp_extension")
    level = cpp_extension_log.level
    try:
        cpp_extension_log.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            # ModelOpt warns about every optional plugin (transformers, megatron, ...) it cannot import.
            warnings.simplefilter("ignore")
            return importlib.import_module("modelopt.torch.quantization")
    except ImportError as error:
        raise UsageError(f"INT8 calibration needs NVIDIA ModelOpt ({error}); install it with: {MODELOPT_INSTALL}") from None
    finally:
        cpp_extension_log.setLevel(level)


def _tensor_quantizer_cls():
    require_modelopt()
    from modelopt.torch.quantization.nn import TensorQuantizer

    return TensorQuantizer


# --------------------------------------------------------------------------------------------
# Q/DQ on the residual add


def _residual_setup(self) -> None:
    from modelopt.torch.quantization.nn import TensorQuantizer
    from modelopt.torch.quantization.tensor_quant import QUANT_DESC_8BIT_PER_TENSOR

    # A plain net (no shortcut) has no add to quantize.
    if getattr(self, "residual", False):
        self._register_temp_attribute(RESIDUAL_QUANTIZER, TensorQuantizer(QUANT_DESC_8BIT_PER_TENSOR))


def _shortcut(self, x: torch.Tensor) -> torch.Tensor:
    identity = x if self.downsample is None else self.downsample(x)
    return getattr(self, RESIDUAL_QUANTIZER)(identity)


def _quant_basic_forward(self, x: torch.Tensor) -> torch.Tensor:
    # resnet_edge.models.blocks.BasicBlock.forward with Q/DQ on the shortcut input of the add.
    out = self.relu(self.bn1(self.conv1(x)))
    out = self.bn2(self.conv2(out))
    if self.residual:
        out = out + _shortcut(self, x)
    return self.relu(out)


def _quant_bottleneck_forward(self, x: torch.Tensor) -> torch.Tensor:
    # resnet_edge.models.blocks.Bottleneck.forward with Q/DQ on the shortcut input of the add.
    out = self.relu(self.bn1(self.conv1(x)))
    out = self.relu(self.bn2(self.conv2(out)))
    out = self.bn3(self.conv3(out))
    if self.residual:
        out = out + _shortcut(self, x)
    return self.relu(out)


_REGISTERED: set[type] = set()


def register_residual_quantization() -> None:
    """Teach ModelOpt to quantize the blocks of ``resnet_edge.models`` with a ``residual_quantizer``.

    Uses ModelOpt's documented extension point ``mtq.register(original_cls, quantized_cls)``: the
    quantized class has a ``_setup`` that creates the quantizer and a ``forward`` that calls it.
    Idempotent. ModelOpt's own conv/linear quantizers inside the block are untouched.
    """
    mtq = require_modelopt()
    from modelopt.torch.quantization.nn.modules.quant_module import QuantModule

    from ..models.blocks import BasicBlock, Bottleneck

    for original, forward in ((BasicBlock, _quant_basic_forward), (Bottleneck, _quant_bottleneck_forward)):
        if original in _REGISTERED:
            continue
        quantized = type(f"QuantResidual{original.__name__}", (QuantModule,), {"_setup": _residual_setup, "forward": forward})
        with contextlib.suppress(KeyError, ValueError, AssertionError):
            mtq.unregister(original)  # a stale registration from an earlier import of this module
        mtq.register(original_cls=original, quantized_cls=quantized)
        _REGISTERED.add(original)


# --------------------------------------------------------------------------------------------
# Configuration


@dataclass(frozen=True)
class PTQConfig:
    """What ``calibrate`` does.

    Attributes:
        method: how each activation's range (amax) is chosen: ``"max"`` (largest |x| seen; ModelOpt's
            INT8 default), ``"mse"`` (searched to minimise the quantization error), ``"entropy"`` (the
            KL-divergence choice TensorRT's legacy calibrator made) or ``"percentile"`` (the
            ``percentile``-th percentile of |x|). Weights always take their per-channel max.
        per_channel_weights: one scale per output channel for conv/linear weights (TensorRT's
            recommendation; per-tensor otherwise).
        quantize_residual: Q/DQ on the shortcut input of each residual add (see the module docstring).
        num_batches: stop after this many calibration batches (``None``: the whole loader).
        keep_fp: layer names (fnmatch patterns, e.g. ``"fc"`` or ``"layer4.*"``) left in higher
            precision after calibration; see ``disable_layers``.
        percentile: the percentile of |x| the ``"percentile"`` method takes as amax.
        entropy_stride: the ``"entropy"`` method tries every ``entropy_stride``-th of the 2048
            histogram bins as the clipping point. ModelOpt's default of 1 evaluates the KL divergence
            in a Python loop ~2000 times per tensor (about 3 s each on a CPU); 16 keeps the choice
            within 1/128 of the range and makes ResNet-152 calibrate in seconds, not many minutes.
    """

    method: str = "max"
    per_channel_weights: bool = True
    quantize_residual: bool = True
    num_batches: int | None = None
    keep_fp: tuple[str, ...] = field(default_factory=tuple)
    percentile: float = 99.99
    entropy_stride: int = 16

    def __post_init__(self) -> None:
        if self.method not in CALIBRATION_METHODS:
            raise UsageError(f"unknown calibration method {self.method!r}; choose one of: {', '.join(CALIBRATION_METHODS)}")
        if not 50.0 < self.percentile <= 100.0:
            raise UsageError(f"the calibration percentile must lie in (50, 100], got {self.percentile}")
        if self.entropy_stride < 1:
            raise UsageError(f"the entropy stride must be at least 1, got {self.entropy_stride}")
        if self.num_batches is not None and self.num_batches < 1:
            raise UsageError(f"the number of calibration batches must be at least 1, got {self.num_batches}")


def modelopt_config(config: PTQConfig = PTQConfig()) -> dict:
    """The ``mtq.quantize`` config: ModelOpt's ``INT8_DEFAULT_CFG`` plus this project's entries.

    ``INT8_DEFAULT_CFG`` is a list of ``{"quantizer_name", "cfg", "enable"}`` entries in ModelOpt
    >= 0.4x and a ``{pattern: attributes}`` dict in the older releases that Jetson images carry;
    later entries override earlier ones in both, so ours are appended.
    """
    mtq = require_modelopt()
    result = copy.deepcopy(mtq.INT8_DEFAULT_CFG)
    per_tensor = {"num_bits": 8, "axis": None}
    entries: list[tuple[str, dict | None, bool]] = []
    if config.method in HISTOGRAM_METHODS:
        entries.append(("*input_quantizer", {**per_tensor, "calibrator": "histogram"}, True))
    if not config.per_channel_weights:
        entries.append(("*weight_quantizer", per_tensor, True))
    residual = {**per_tensor, "calibrator": "histogram"} if config.method in HISTOGRAM_METHODS else per_tensor
    entries.append((f"*{RESIDUAL_QUANTIZER}", residual if config.quantize_residual else None, config.quantize_residual))
    quant_cfg = result["quant_cfg"]
    for pattern, attributes, enable in entries:
        if isinstance(quant_cfg, list):
            entry = {"quantizer_name": pattern, "enable": enable}
            if attributes is not None:
                entry["cfg"] = dict(attributes)
            quant_cfg.append(entry)
        else:
            quant_cfg[pattern] = {**(attributes or {}), "enable": enable}
    # Histogram methods: quantizers are inserted without calibration, then _histogram_calibrate runs.
    result["algorithm"] = None if config.method in HISTOGRAM_METHODS else config.method
    return result


# --------------------------------------------------------------------------------------------
# Calibration


def _images(batch) -> torch.Tensor:
    """The image tensor of a loader batch: ``images`` or ``(images, labels, ...)``."""
    if isinstance(batch, torch.Tensor):
        return batch
    if isinstance(batch, (list, tuple)) and batch and isinstance(batch[0], torch.Tensor):
        return batch[0]
    if isinstance(batch, dict) and isinstance(batch.get("image"), torch.Tensor):
        return batch["image"]
    raise UsageError(f"a calibration batch must be an image tensor or (images, labels), got {type(batch).__name__}")


def make_forward_loop(
    loader: Iterable, device: torch.device | str = "cpu", num_batches: int | None = None, progress: Callable[[int], None] | None = None
) -> Callable[[nn.Module], None]:
    """The ``forward_loop`` ModelOpt calls: every batch of ``loader`` (up to ``num_batches``) through the model.

    Raises ``UsageError`` from inside ``mtq.quantize`` when the loader yields no batch: calibrating
    on nothing would leave every activation quantizer without an ``amax``.
    """
    device = torch.device(device)

    def forward_loop(model: nn.Module) -> None:
        seen = 0
        with torch.no_grad():
            for batch in loader:
                images = _images(batch)
                model(images.to(device=device, dtype=torch.float32, non_blocking=True))
                seen += 1
                if progress is not None:
                    progress(images.shape[0])
                if num_batches is not None and seen >= num_batches:
                    break
        if seen == 0:
            raise UsageError("the calibration data yielded no images; INT8 needs a non-empty calibration set")

    return forward_loop


def calibrate(
    model: nn.Module,
    loader: Iterable,
    config: PTQConfig = PTQConfig(),
    device: torch.device | str = "cpu",
    progress: Callable[[int], None] | None = None,
) -> nn.Module:
    """Calibrate a copy of ``model`` with ModelOpt and return it as a fake-quant INT8 model.

    ``model`` itself is left as it was (it stays the FP32 reference). ``loader`` yields image
    batches, NCHW float32 and already preprocessed, or ``(images, labels)`` pairs. Calibration runs
    on ``device``; the CPU works, a GPU is faster for large sets.
    """
    mtq = require_modelopt()
    if config.quantize_residual:
        register_residual_quantization()
    quantized = copy.deepcopy(model).eval().to(device)
    forward_loop = make_forward_loop(loader, device, config.num_batches, progress)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        # ModelOpt prints "Inserted N quantizers", progress bars and plugin warnings; keep the CLI quiet.
        warnings.simplefilter("ignore")
        if config.method in HISTOGRAM_METHODS:
            mtq.quantize(quantized, modelopt_config(config), forward_loop=None)
            _histogram_calibrate(quantized, forward_loop, config)
        else:
            mtq.quantize(quantized, modelopt_config(config), forward_loop=forward_loop)
    uncalibrated = [name for name, quantizer in iter_quantizers(quantized) if quantizer.is_enabled and not _has_amax(quantizer)]
    if uncalibrated:
        raise UsageError(f"calibration left {len(uncalibrated)} quantizers without a range (first: {uncalibrated[0]}); the calibration batches never reached them")
    if config.keep_fp:
        disable_layers(quantized, config.keep_fp)
    return quantized.eval()


def _histogram_calibrate(model: nn.Module, forward_loop: Callable[[nn.Module], None], config: PTQConfig) -> None:
    """ModelOpt's stats-collection pass, with the histogram method chosen per calibrator.

    ``model_calib.finish_stats_collection`` asks every calibrator for the same method, which the
    per-channel weight ``MaxCalibrator`` cannot answer; so the amax is loaded per quantizer through
    ``TensorQuantizer.load_calib_amax``, the call ``finish_stats_collection`` itself makes.
    """
    from modelopt.torch.quantization.calib import HistogramCalibrator
    from modelopt.torch.quantization.model_calib import enable_stats_collection

    enable_stats_collection(model)
    forward_loop(model)
    for _, quantizer in iter_quantizers(model):
        calibrator = getattr(quantizer, "_calibrator", None)
        if not quantizer.is_enabled or calibrator is None:
            continue
        if isinstance(calibrator, HistogramCalibrator):
            if config.method == "percentile":
                quantizer.load_calib_amax("percentile", percentile=config.percentile)
            else:
                quantizer.load_calib_amax("entropy", stride=config.entropy_stride)
        else:
            quantizer.load_calib_amax()
        quantizer.enable_quant()
        quantizer.disable_calib()


def _has_amax(quantizer) -> bool:
    amax = getattr(quantizer, "amax", None)
    return amax is not None and bool(torch.isfinite(torch.as_tensor(amax)).all())


# --------------------------------------------------------------------------------------------
# Inspecting and switching quantizers (issue 6 builds its sensitivity analysis on these)


def is_quantized(model: nn.Module) -> bool:
    """Whether ``model`` holds ModelOpt quantizers."""
    try:
        quantizer_cls = _tensor_quantizer_cls()
    except UsageError:
        return False
    return any(isinstance(module, quantizer_cls) for module in model.modules())


def iter_quantizers(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """``(qualified name, TensorQuantizer)`` for every quantizer in ``model``."""
    quantizer_cls = _tensor_quantizer_cls()
    for name, module in model.named_modules():
        if isinstance(module, quantizer_cls):
            yield name, module


def _layer_of(quantizer_name: str) -> str:
    layer, _, _ = quantizer_name.rpartition(".")
    return layer


def quantized_layers(model: nn.Module) -> dict[str, list[str]]:
    """Layer name -> names of its calibrated quantizers, in model order.

    A layer is the module owning the quantizers: a conv (``layer1.0.conv1``: input and weight), the
    classifier (``fc``), or a residual block (``layer1.0``: its ``residual_quantizer``). Quantizers
    that ModelOpt's config switched off before calibration (BatchNorm, outputs) are not listed.
    """
    layers: dict[str, list[str]] = {}
    for name, quantizer in iter_quantizers(model):
        if _has_amax(quantizer):
            layers.setdefault(_layer_of(name), []).append(name.rpartition(".")[2])
    return layers


def _select_layers(model: nn.Module, patterns: Iterable[str]) -> list[str]:
    layers = quantized_layers(model)
    selected: list[str] = []
    for pattern in patterns:
        matches = [layer for layer in layers if fnmatch.fnmatchcase(layer, pattern)]
        if not matches:
            sample = ", ".join(list(layers)[:6])
            raise UsageError(f"no quantized layer is called {pattern!r}; layers look like: {sample}, ...")
        selected.extend(layer for layer in matches if layer not in selected)
    return selected


def _set_layers(model: nn.Module, patterns: Iterable[str], enable: bool) -> list[str]:
    selected = _select_layers(model, patterns)
    owned = set(selected)
    for name, quantizer in iter_quantizers(model):
        if _layer_of(name) in owned and _has_amax(quantizer):
            quantizer.enable() if enable else quantizer.disable()
    return selected


def disable_layers(model: nn.Module, patterns: Iterable[str]) -> list[str]:
    """Switch off every quantizer of the layers matching ``patterns`` (the layer runs in FP16/FP32).

    Returns the layer names affected; a ``UsageError`` when a pattern matches no quantized layer.
    The calibrated ranges stay, so ``enable_layers`` undoes this without recalibration.
    """
    return _set_layers(model, patterns, enable=False)


def enable_layers(model: nn.Module, patterns: Iterable[str]) -> list[str]:
    """Switch the calibrated quantizers of the matching layers back on; the inverse of ``disable_layers``."""
    return _set_layers(model, patterns, enable=True)


@contextlib.contextmanager
def layers_disabled(model: nn.Module, patterns: Iterable[str]) -> Iterator[list[str]]:
    """``disable_layers`` for the duration of a ``with`` block; the previous state is restored."""
    states = {name: quantizer.is_enabled for name, quantizer in iter_quantizers(model)}
    try:
        yield disable_layers(model, patterns)
    finally:
        for name, quantizer in iter_quantizers(model):
            quantizer.enable() if states.get(name) else quantizer.disable()


def higher_precision_layers(model: nn.Module) -> list[str]:
    """Calibrated layers whose quantizers are all switched off (the manifest's ``higher_precision_layers``)."""
    result = []
    enabled = {name: quantizer.is_enabled for name, quantizer in iter_quantizers(model)}
    for layer, quantizers in quantized_layers(model).items():
        if not any(enabled[f"{layer}.{q}" if layer else q] for q in quantizers):
            result.append(layer)
    return result


def quantization_manifest(model: nn.Module, config: PTQConfig, simulated_top1: float | None = None) -> dict:
    """The manifest's ``quantization`` object for a model calibrated by ``calibrate``."""
    return {
        "tool": "modelopt",
        "tool_version": modelopt_version(),
        "format": "QDQ",
        "per_channel_weights": config.per_channel_weights,
        "residual_qdq": config.quantize_residual,
        "placement": "tensorrt",
        "placement_reason": (
            "explicit Q/DQ from ModelOpt: per-channel weights and per-tensor activations at every conv and "
            "the classifier, plus the shortcut input of each residual add so TensorRT fuses conv+add+relu in INT8"
        ),
        "higher_precision_layers": higher_precision_layers(model),
        "simulated_top1": simulated_top1,
    }


# --------------------------------------------------------------------------------------------
# Export with explicit Q/DQ


def export_for_tensorrt(
    model: nn.Module, example: torch.Tensor, batch: tuple[int, int, int] | None = None
) -> torch.export.ExportedProgram:
    """``torch.export`` a calibrated model so each quantizer becomes a ``tensorrt::quantize_op`` node.

    ``example`` is an NCHW batch on the CUDA device the model is on. ``batch`` = (min, opt, max)
    makes dim 0 dynamic (``torch.export.Dim``), as ``torch_tensorrt.Input(min_shape=...)`` would.
    A ``UsageError`` when model or example are not on a GPU (see the module docstring for why).
    """
    require_modelopt()
    from modelopt.torch.quantization.utils import export_torch_mode

    parameter = next(model.parameters(), None)
    if example.device.type != "cuda" or (parameter is not None and parameter.device.type != "cuda"):
        raise UsageError(
            "exporting an INT8 model with Q/DQ needs it on a CUDA GPU: ModelOpt only routes CUDA tensors through "
            "the exportable tensorrt::quantize_op (CPU tensors take an eager path torch.export cannot trace); "
            "move the model and example to 'cuda' (the TensorRT build needs that GPU anyway)"
        )
    dynamic_shapes = None
    if batch is not None and batch[0] != batch[2]:
        low, _, high = batch
        if example.shape[0] == 1:
            raise UsageError("a dynamic batch needs an example batch of 2 or more (torch.export specialises on size 1)")
        dynamic_shapes = ({0: torch.export.Dim("batch", min=low, max=high)},)
    with torch.no_grad(), export_torch_mode():
        return torch.export.export(model.eval(), (example,), dynamic_shapes=dynamic_shapes, strict=False)


def count_qdq_nodes(program: torch.export.ExportedProgram | torch.fx.GraphModule) -> int:
    """Number of ``tensorrt::quantize_op`` (Q/DQ pair) nodes in an exported graph."""
    graph = program.graph_module.graph if hasattr(program, "graph_module") else program.graph
    return sum(1 for node in graph.nodes if node.op == "call_function" and "quantize_op" in str(node.target))
