"""DLA engines, built with TensorRT's builder API directly from an ONNX export.

Torch-TensorRT's dynamo path cannot place layers on the DLA: its interpreter (2.8 and 2.14,
``conversion/_TRTInterpreter.py``) sets only ``builder_config.DLA_core`` and the DLA memory pools, never
``default_device_type = DeviceType.DLA`` or ``BuilderFlag.GPU_FALLBACK`` (only the old TorchScript
frontend's ``ConversionCtx.cpp`` did), so every layer ran on the GPU. Here the folded model (FP16) or
ModelOpt's calibrated fake-quant model (INT8: its Q/DQ nodes carry the scales the CPU simulator uses)
is exported to ONNX with a static batch (the DLA has no dynamic shapes) and built with:

* ``config.default_device_type = trt.DeviceType.DLA`` and ``config.DLA_core = N``;
* ``BuilderFlag.GPU_FALLBACK`` (layers the DLA cannot run go to the GPU);
* ``BuilderFlag.FP16``, plus ``BuilderFlag.INT8`` for INT8 (the DLA runs nothing in FP32);
* ``ProfilingVerbosity.DETAILED``, so the engine inspector reports each layer's device (``placement``).

TensorRT 10.x (JetPack 6) has this API. TensorRT 11.0-11.3 have no DLA; 11.4.1+ has it on AGX Orin
with JetPack 7.2.2+ only (``environment.check_dla_support``).
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from ...core.errors import CheckFailed
from ..base import BuildConfig
from .placement import placement_of

log = logging.getLogger(__name__)

ONNX_FILE = "dla-source.onnx"  # written to a work directory, not into the bundle
OPSET = 17  # the TorchScript-based exporter, which exports ModelOpt's quantizers as Q/DQ pairs


def _tensorrt():
    """``import tensorrt`` (TensorRT's own Python bindings)."""
    import tensorrt

    return tensorrt


def export_onnx(model: nn.Module, config: BuildConfig, path: Path) -> None:
    """``model`` (on its device) to ONNX with the static batch ``config.batch.opt`` and the build's I/O names."""
    device = next(model.parameters()).device
    example = config.example_input(config.batch.opt).to(device)
    with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (example,), str(path), input_names=[config.input_name], output_names=[config.output_name],
            opset_version=OPSET, dynamo=False,
        )


def builder_settings(precision: str, dla_core: int, workspace_mb: int | None) -> dict:
    """What the builder config gets, as plain values (recorded in the manifest, applied by ``build_engine``)."""
    flags = ["GPU_FALLBACK", "FP16"] + (["INT8"] if precision == "int8" else [])
    return {"default_device_type": "DLA", "DLA_core": dla_core, "flags": flags, "workspace_mb": workspace_mb,
            "profiling_verbosity": "DETAILED"}


def _parse(trt, builder, logger, onnx_path: Path):
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx_path).read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise CheckFailed(f"TensorRT cannot parse the ONNX export for the DLA: {errors}")
    return network, parser


def mark_outputs(network, names: Sequence[str]) -> None:
    """Mark the tensors named ``names`` as extra network outputs. The ONNX parser names each tensor it
    creates after its ONNX tensor (onnx-tensorrt ``ImporterContext::registerTensor``), so ONNX names find them."""
    tensors = {}
    for index in range(network.num_layers):
        layer = network.get_layer(index)
        for slot in range(layer.num_outputs):
            tensors[layer.get_output(slot).name] = layer.get_output(slot)
    missing = [name for name in names if name not in tensors]
    if missing:
        raise CheckFailed(f"TensorRT's network has no tensor named {missing[0]!r}: the parser renamed the ONNX tensors; cannot mark the block outputs")
    for name in names:
        network.mark_output(tensors[name])


def build_engine(onnx_path: Path, settings: dict, timing_cache: Path | None = None, extra_outputs: Sequence[str] = ()) -> bytes:
    """Build the DLA engine from ``onnx_path`` with ``settings`` (``builder_settings``); the plan's bytes.

    ``timing_cache``: read if it exists and written back after the build (shared with later builds).
    ``extra_outputs``: ONNX tensor names marked as engine outputs besides the logits (``diagnose``'s probe)."""
    trt = _tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network, _parser = _parse(trt, builder, logger, onnx_path)
    mark_outputs(network, extra_outputs)
    config = builder.create_builder_config()
    config.default_device_type = trt.DeviceType.DLA
    config.DLA_core = int(settings["DLA_core"])
    for flag in settings["flags"]:
        config.set_flag(getattr(trt.BuilderFlag, flag))
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    if settings.get("workspace_mb"):
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(settings["workspace_mb"]) << 20)
    cache = None
    if timing_cache is not None:
        existing = Path(timing_cache).read_bytes() if Path(timing_cache).is_file() else b""
        cache = config.create_timing_cache(existing)
        config.set_timing_cache(cache, False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise CheckFailed("TensorRT's builder failed to build the DLA engine (see TensorRT's log above)")
    if cache is not None:
        Path(timing_cache).parent.mkdir(parents=True, exist_ok=True)
        Path(timing_cache).write_bytes(bytes(memoryview(config.get_timing_cache().serialize())))
    return bytes(serialized)


def inspect_placement(plan: bytes, dla_core: int) -> dict | None:
    """The DLA / GPU split of a built engine, from ``IEngineInspector`` (the runtime's ``DLA_core`` set first)."""
    trt = _tensorrt()
    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
    runtime.DLA_core = dla_core
    engine = runtime.deserialize_cuda_engine(plan)
    if engine is None:
        raise CheckFailed("TensorRT cannot deserialise the DLA engine it just built")
    inspector = engine.create_engine_inspector()
    return placement_of(inspector.get_engine_information(trt.LayerInformationFormat.JSON))
