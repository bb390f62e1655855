"""DLA engines, built with TensorRT's builder API directly from an ONNX export.

Torch-TensorRT's dynamo path cannot place layers on the DLA: its interpreter (2.8 and 2.14,
``conversion/_TRTInterpreter.py``) sets only ``builder_config.DLA_core`` and the DLA memory pools, never
``default_device_type = DeviceType.DLA`` or ``BuilderFlag.GPU_FALLBACK`` (only the old TorchScript
frontend's ``ConversionCtx.cpp`` did), so every layer ran on the GPU. Here the folded model (FP16) or
ModelOpt's calibrated fake-quant model (INT8: its Q/DQ nodes carry the scales the CPU simulator uses)
is exported to ONNX with a static batch (the DLA has no dynamic shapes), turned into the graph the
installed TensorRT's DLA route needs (``dla_routes``, ``dla_source``) and built with:

* ``config.default_device_type = trt.DeviceType.DLA`` and ``config.DLA_core = N``;
* ``BuilderFlag.GPU_FALLBACK`` (layers the DLA cannot run go to the GPU);
* TensorRT 10: ``BuilderFlag.FP16``, plus ``INT8`` with each tensor's dynamic range from the Q/DQ graph
  (implicit INT8, the only INT8 the DLA runs); TensorRT 11.4.1+: no precision flag (none exists), an FP16
  export instead;
* ``ProfilingVerbosity.DETAILED``, so the engine inspector reports each layer's device (``placement``).

The flags set, the ranges given and the network's tensor types are returned with the plan
(``DlaEngine.applied``) for the manifest; ``checked_placement`` fails the build when too few of the
network's convolutions landed on the DLA.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from ...core.errors import CheckFailed, UsageError
from ..base import BuildConfig
from ..common import FloatIO
from . import api, dla_network, dla_routes, dla_source
from .placement import check_dla_fraction, placement_of

log = logging.getLogger(__name__)

ONNX_FILE = "dla-source.onnx"  # written to a work directory, not into the bundle
OPSET = 17  # the TorchScript-based exporter, which exports ModelOpt's quantizers as Q/DQ pairs


@dataclass
class DlaEngine:
    """A built DLA plan, the network's layers in order (for ``placement``) and what the build applied."""

    plan: bytes
    network_layers: list[list[str]]
    applied: dict = field(default_factory=dict)


def _tensorrt():
    """``import tensorrt`` (TensorRT's own Python bindings)."""
    import tensorrt

    return tensorrt


def installed_route() -> str | None:
    """The DLA route of the installed TensorRT, or None where it has none (or is not installed)."""
    try:
        return dla_routes.dla_route(api.detect_versions().tensorrt)
    except UsageError:
        return None


def export_onnx(model: nn.Module, config: BuildConfig, path: Path) -> None:
    """``model`` (on its device) to ONNX with the static batch ``config.batch.opt`` and the build's I/O names.

    FP16 on a strongly typed TensorRT (11.4.1+) exports the model in half between float32 casts (the
    tensor types are the precision there); the probe engine calls this too, on the same TensorRT."""
    device = next(model.parameters()).device
    example = config.example_input(config.batch.opt).to(device)
    if config.precision == "fp16" and installed_route() == dla_routes.STRONGLY_TYPED:
        model = FloatIO(copy.deepcopy(model).half(), torch.float16).eval()
    with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (example,), str(path), input_names=[config.input_name], output_names=[config.output_name],
            opset_version=OPSET, dynamo=False,
        )


def builder_settings(precision: str, dla_core: int, workspace_mb: int | None, tensorrt_version: str | None = None) -> dict:
    """What the builder gets, as plain values (recorded in the manifest, applied by ``build``): the route
    of ``tensorrt_version`` (the installed one by default) and only the flags that route's bindings have."""
    version = tensorrt_version if tensorrt_version is not None else api.detect_versions().tensorrt
    route = dla_routes.check_route_request(version, precision)
    return {"route": route, "precision": precision, "network": dla_routes.network_typing(route),
            "default_device_type": "DLA", "DLA_core": dla_core, "flags": dla_routes.builder_flags(route, precision),
            "workspace_mb": workspace_mb, "profiling_verbosity": "DETAILED"}


def _parse(trt, builder, logger, onnx_path: Path):
    network = builder.create_network(0)  # explicit batch; weakly typed on 10.x (11.x: always strongly typed)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx_path).read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise CheckFailed(f"TensorRT cannot parse the ONNX export for the DLA: {errors}")
    return network, parser


def mark_outputs(network, names: Sequence[str]) -> None:
    """Mark the tensors named ``names`` (ONNX tensor names) as extra network outputs."""
    tensors = dla_network.network_tensors(network)
    missing = [name for name in names if name not in tensors]
    if missing:
        raise CheckFailed(f"TensorRT's network has no tensor named {missing[0]!r}: the parser renamed the ONNX tensors; cannot mark the block outputs")
    for name in names:
        network.mark_output(tensors[name])


def _configure(trt, builder, settings: dict, timing_cache: Path | None):
    """The builder config of ``settings``: DLA device, flags, DETAILED profiling, workspace, timing cache."""
    config = builder.create_builder_config()
    config.default_device_type = trt.DeviceType.DLA
    config.DLA_core = int(settings["DLA_core"])
    flags = dla_network.apply_flags(trt.BuilderFlag, config, settings["flags"])
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    if settings.get("workspace_mb"):
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(settings["workspace_mb"]) << 20)
    cache = None
    if timing_cache is not None:
        existing = Path(timing_cache).read_bytes() if Path(timing_cache).is_file() else b""
        cache = config.create_timing_cache(existing)
        config.set_timing_cache(cache, False)
    return config, flags, cache


def build(onnx_path: Path, settings: dict, timing_cache: Path | None = None, extra_outputs: Sequence[str] = ()) -> DlaEngine:
    """Build the DLA engine from the export at ``onnx_path`` with ``settings`` (``builder_settings``).

    ``timing_cache``: read if it exists and written back after the build (shared with later builds).
    ``extra_outputs``: ONNX tensor names marked as engine outputs besides the logits (``diagnose``'s probe)."""
    trt = _tensorrt()
    source = dla_source.prepare(onnx_path, settings)
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network, _parser = _parse(trt, builder, logger, source.path)
    mark_outputs(network, extra_outputs)
    ranges = dla_network.apply_dynamic_ranges(network, source.ranges) if source.ranges else 0
    for conflict in source.range_conflicts:
        log.warning(f"two quantizers of one tensor with different ranges: {conflict}")
    config, flags, cache = _configure(trt, builder, settings, timing_cache)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise CheckFailed("TensorRT's builder failed to build the DLA engine (see TensorRT's log above)")
    if cache is not None:
        Path(timing_cache).parent.mkdir(parents=True, exist_ok=True)
        Path(timing_cache).write_bytes(bytes(memoryview(config.get_timing_cache().serialize())))
    applied = {"flags_applied": flags, "graph": source.conversion, "dynamic_ranges": ranges,
               "range_conflicts": source.range_conflicts, "tensor_types": dla_network.tensor_types(network)}
    return DlaEngine(bytes(serialized), dla_network.layer_table(network), applied)


def build_engine(onnx_path: Path, settings: dict, timing_cache: Path | None = None, extra_outputs: Sequence[str] = ()) -> bytes:
    """``build``'s plan alone (the probe engine needs nothing else)."""
    return build(onnx_path, settings, timing_cache, extra_outputs).plan


def inspect_placement(plan: bytes, dla_core: int, network_layers: list[list[str]] | None = None) -> dict | None:
    """The DLA / GPU split of a built engine, from ``IEngineInspector`` (the runtime's ``DLA_core`` set first)."""
    trt = _tensorrt()
    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
    runtime.DLA_core = dla_core
    engine = runtime.deserialize_cuda_engine(plan)
    if engine is None:
        raise CheckFailed("TensorRT cannot deserialise the DLA engine it just built")
    inspector = engine.create_engine_inspector()
    return placement_of(inspector.get_engine_information(trt.LayerInformationFormat.JSON), network_layers)


def checked_placement(engine: DlaEngine, dla_core: int, min_dla_fraction: float | None) -> dict | None:
    """``inspect_placement`` of a fresh build, ``CheckFailed`` when fewer convolutions than ``min_dla_fraction``
    (None: ``dla_routes.DEFAULT_MIN_DLA_FRACTION``) run on the DLA."""
    fraction = dla_routes.DEFAULT_MIN_DLA_FRACTION if min_dla_fraction is None else min_dla_fraction
    placement = inspect_placement(engine.plan, dla_core, engine.network_layers)
    check_dla_fraction(placement, fraction)
    placement["min_dla_fraction"] = fraction
    return placement
