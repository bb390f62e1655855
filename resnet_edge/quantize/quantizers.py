"""Inspecting and switching the quantizers of a ModelOpt-calibrated model, by layer name.

The sensitivity analysis and precision fallback build on these: ``disable_layers`` /
``enable_layers`` keep each quantizer's ``amax``, so a layer can be switched back on without
recalibrating; ``higher_precision_layers`` is what the manifest records.
"""

from __future__ import annotations

import contextlib
import fnmatch
from typing import Iterable, Iterator

import torch
from torch import nn

from ..core.errors import UsageError
from .modelopt_import import require_modelopt


def is_quantized(model: nn.Module) -> bool:
    """Whether ``model`` holds ModelOpt quantizers (``False`` when ModelOpt is not installed)."""
    try:
        quantizer_cls = require_modelopt().nn.TensorQuantizer
    except UsageError:
        return False
    return any(isinstance(module, quantizer_cls) for module in model.modules())


def iter_quantizers(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """``(qualified name, TensorQuantizer)`` for every quantizer in ``model``."""
    quantizer_cls = require_modelopt().nn.TensorQuantizer
    for name, module in model.named_modules():
        if isinstance(module, quantizer_cls):
            yield name, module


def has_amax(quantizer: nn.Module) -> bool:
    """Whether a quantizer holds a calibrated, finite range."""
    amax = getattr(quantizer, "amax", None)
    return amax is not None and bool(torch.isfinite(torch.as_tensor(amax)).all())


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
        if has_amax(quantizer):
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
        if _layer_of(name) in owned and has_amax(quantizer):
            quantizer.enable() if enable else quantizer.disable()
    return selected


def disable_layers(model: nn.Module, patterns: Iterable[str]) -> list[str]:
    """Switch off every quantizer of the layers matching ``patterns`` (fnmatch; the layer runs in FP16/FP32).

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


__all__ = [
    "disable_layers",
    "enable_layers",
    "has_amax",
    "higher_precision_layers",
    "is_quantized",
    "iter_quantizers",
    "layers_disabled",
    "quantized_layers",
]
