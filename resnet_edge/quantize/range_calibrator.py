"""ModelOpt's activation calibration through ``quantize.ranges``: one range implementation for both paths.

``RangeCalibrator`` is a ModelOpt calibrator (the ``collect`` / ``compute_amax`` / ``reset``
protocol of ``modelopt.torch.quantization.calib._Calibrator``, which ``TensorQuantizer`` drives) that
feeds a ``ranges.TensorStats`` and answers with ``ranges.compute_amax``. ``use_range_calibrators``
puts one on every per-tensor activation quantizer of a model ModelOpt has just instrumented;
ModelOpt's own ``max`` calibration pass (``mtq.calibrate``) then collects and loads the ranges, while
weights keep ModelOpt's per-channel max calibrator.

The statistics stay on the quantizers after calibration, so ``activation_stats`` and
``apply_method`` can derive another method's ranges without running the data again.

It is duck-typed rather than a subclass so this module imports without ModelOpt; it is attached
after ``mtq.quantize``, so a saved model's ModelOpt state never names this class.
"""

from __future__ import annotations

import torch
from torch import nn

from .quantizers import iter_quantizers
from .ranges import PERCENTILE, TensorStats, check_method, compute_amax, needs_histogram


class RangeCalibrator:
    """Per-tensor activation statistics for one ModelOpt ``TensorQuantizer``; amax by ``ranges.compute_amax``."""

    def __init__(self, method: str = "max", percentile: float = PERCENTILE, num_bits: int = 8, axis=None, unsigned: bool = False) -> None:
        check_method(method)
        if axis is not None:
            raise ValueError("RangeCalibrator calibrates per-tensor ranges only (axis=None)")
        # The attribute names ModelOpt's TensorQuantizer reads and writes on its calibrator.
        self._num_bits, self._axis, self._unsigned = num_bits, axis, unsigned
        self.method, self.percentile = method, percentile
        self.stats = TensorStats(histogram=needs_histogram(method))
        self._device = torch.device("cpu")

    def collect(self, x: torch.Tensor) -> None:
        """Add one tensor the quantizer saw."""
        self._device = x.device
        self.stats.update(x)

    def reset(self) -> None:
        """Forget everything collected."""
        self.stats = TensorStats(histogram=self.stats.histogram)

    def compute_amax(self, method: str | None = None, **params) -> torch.Tensor | None:
        """The range ``method`` (default: this calibrator's) chooses; ``None`` before any data."""
        if self.stats.empty:
            return None
        params.setdefault("percentile", self.percentile)
        amax = compute_amax(self.stats, method or self.method, unsigned=bool(self._unsigned), num_bits=int(self._num_bits), **params)
        return torch.tensor(amax, dtype=torch.float32, device=self._device)

    def __repr__(self) -> str:
        return f"RangeCalibrator(method={self.method}, num_bits={self._num_bits}, unsigned={self._unsigned})"


def _is_activation(name: str, quantizer: nn.Module) -> bool:
    return quantizer.is_enabled and not name.endswith("weight_quantizer") and quantizer.axis is None


def use_range_calibrators(model: nn.Module, method: str, percentile: float = PERCENTILE) -> list[str]:
    """Give every enabled per-tensor activation quantizer of ``model`` a ``RangeCalibrator``.

    Call it between ``mtq.quantize(model, config, forward_loop=None)`` and ``mtq.calibrate``. Returns
    the quantizer names.
    """
    names = []
    for name, quantizer in iter_quantizers(model):
        if _is_activation(name, quantizer):
            kwargs = dict(method=method, percentile=percentile, num_bits=quantizer.num_bits, unsigned=quantizer.unsigned)
            quantizer.set_from_attribute_config({"calibrator": (RangeCalibrator, (), kwargs)})
            names.append(name)
    return names


def activation_stats(model: nn.Module) -> dict[str, TensorStats]:
    """Quantizer name -> the statistics its ``RangeCalibrator`` collected (after ``calibrate``)."""
    return {
        name: quantizer._calibrator.stats
        for name, quantizer in iter_quantizers(model)
        if isinstance(getattr(quantizer, "_calibrator", None), RangeCalibrator)
    }


def apply_method(model: nn.Module, method: str, **params) -> dict[str, float]:
    """Reload every range-calibrated quantizer's amax with ``method`` from the kept statistics.

    ``params`` go to ``ranges.compute_amax`` (e.g. ``percentile=99.9``); a histogram method needs
    statistics collected by a histogram method. Returns quantizer name -> new amax.
    """
    result = {}
    for name, quantizer in iter_quantizers(model):
        calibrator = getattr(quantizer, "_calibrator", None)
        if isinstance(calibrator, RangeCalibrator) and not calibrator.stats.empty:
            quantizer.amax = calibrator.compute_amax(method, **params)
            result[name] = float(quantizer.amax)
    return result


__all__ = ["RangeCalibrator", "activation_stats", "apply_method", "use_range_calibrators"]
