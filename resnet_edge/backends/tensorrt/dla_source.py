"""The ONNX graph TensorRT's builder parses for a DLA engine, made from ``dla.export_onnx``'s export.

* TensorRT 10, INT8 (``dla_routes.WEAKLY_TYPED``): the DLA quantizes implicitly only, so the Q/DQ pairs
  ModelOpt exported are taken out and their ranges kept: each activation pair gives its tensor the
  dynamic range ``amax = scale * 127`` (symmetric INT8, zero point 0: the amax the CPU simulator, ``diagnose``
  and ``retarget`` use), each weight pair gives its float weights back (implicit INT8 quantizes weights
  per output channel itself). Float-to-float ``Cast`` nodes (the exporter writes one before a tensor's
  second quantizer) go too, so a tensor's two quantizers land on one network tensor.
* TensorRT 11.4.1+ (``dla_routes.STRONGLY_TYPED``): the export itself is half precision between float32
  I/O casts (``dla.export_onnx``), NVIDIA's "half-precision export" route; used as it is. ModelOpt's
  AutoCast (the other route NVIDIA names) is not used: ``modelopt.onnx`` needs ModelOpt's ``[onnx]`` extra
  (onnx-graphsurgeon, polygraphy, cupy; it pins onnx 1.21 against this project's 1.23), and 0.47's
  ``convert_to_mixed_precision`` has no ``target_dla``, so its classifier could keep nodes in FP32, which
  the DLA cannot run.
* TensorRT 10, FP16: the float32 export as it is (``BuilderFlag.FP16`` decides).

Written by hand on the ``onnx`` API because no installed library turns a Q/DQ graph back into a float
graph with its ranges (ModelOpt and onnxruntime only go the other way).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...core.errors import CheckFailed
from . import dla_routes

INT8_MAX = 127  # symmetric signed INT8: amax = scale * 127 (ModelOpt's export, TensorRT's implicit ranges)


@dataclass
class DlaSource:
    """The graph to parse and what was done to it (recorded in the manifest)."""

    path: Path
    conversion: str
    ranges: dict[str, float] = field(default_factory=dict)  # tensor name -> amax (implicit INT8 only)
    range_conflicts: list[str] = field(default_factory=list)


def _onnx():
    import onnx

    return onnx


def _constants(graph) -> dict:
    """Tensor name -> numpy value for initializers and ``Constant`` node outputs."""
    onnx = _onnx()
    values = {init.name: onnx.numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            values[node.output[0]] = onnx.numpy_helper.to_array(node.attribute[0].t)
    return values


def _float_casts(model) -> dict[str, str]:
    """Cast output -> Cast input for every ``Cast`` from float32 to float32 (a no-op the exporter adds)."""
    onnx = _onnx()
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {value.name: value.type.tensor_type.elem_type for value in
             list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output)}
    float32, outputs = onnx.TensorProto.FLOAT, {output.name for output in model.graph.output}
    return {node.output[0]: node.input[0] for node in model.graph.node
            if node.op_type == "Cast" and node.attribute[0].i == float32 and types.get(node.input[0]) == float32
            and node.output[0] not in outputs}


def _activation_amax(node, constants: dict) -> float | None:
    """The amax of a per-tensor QuantizeLinear (``None`` for a per-channel one, i.e. weights)."""
    scale = np.asarray(constants[node.input[1]], dtype=np.float64)
    zero_point = np.asarray(constants[node.input[2]]) if len(node.input) > 2 and node.input[2] else np.zeros(1)
    if np.any(zero_point != 0):
        raise CheckFailed(f"{node.name}: an asymmetric quantizer (zero point {zero_point.ravel()[0]}); TensorRT's implicit INT8 is symmetric")
    return float(scale.reshape(-1)[0]) * INT8_MAX if scale.size == 1 else None


def _record(ranges: dict[str, float], conflicts: list[str], tensor: str, amax: float) -> None:
    """Keep one range per tensor; two quantizers of one tensor with different amax keep the larger (no
    value of either is clipped) and are reported."""
    known = ranges.get(tensor)
    if known is not None and not np.isclose(known, amax, rtol=1e-6):
        conflicts.append(f"{tensor}: {known:.6g} and {amax:.6g}, kept {max(known, amax):.6g}")
    ranges[tensor] = max(amax, known or 0.0)


def strip_qdq(model) -> tuple[object, dict[str, float], list[str]]:
    """A float copy of a Q/DQ ``onnx.ModelProto`` and its activation ranges: (model, {tensor: amax}, conflicts).

    Each QuantizeLinear -> DequantizeLinear pair is removed and the DequantizeLinear's consumers read the
    quantized tensor itself; ``CheckFailed`` for a QuantizeLinear that does not feed DequantizeLinear only."""
    onnx = _onnx()
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    constants = _constants(graph)
    alias = _float_casts(model)  # a removed node's output -> the tensor that replaces it
    nodes = list(graph.node)
    consumers: dict[str, list[int]] = {}
    for index, node in enumerate(nodes):
        for name in node.input:
            consumers.setdefault(name, []).append(index)
    removed, ranges, conflicts = set(), {}, []
    for index, node in enumerate(nodes):
        if node.op_type != "QuantizeLinear":
            continue
        dequantizers = consumers.get(node.output[0], [])
        if not dequantizers or any(nodes[d].op_type != "DequantizeLinear" for d in dequantizers):
            raise CheckFailed(f"{node.name}: a QuantizeLinear that does not feed DequantizeLinear only; cannot build implicit INT8 from it")
        tensor = alias.get(node.input[0], node.input[0])
        amax = _activation_amax(node, constants)
        if amax is not None and tensor not in constants:  # weights: implicit INT8 quantizes them itself
            _record(ranges, conflicts, tensor, amax)
        removed.update([index, *dequantizers])
        alias.update({nodes[d].output[0]: tensor for d in dequantizers})
    removed.update(i for i, node in enumerate(nodes) if node.op_type == "Cast" and node.output[0] in alias)
    kept = []
    for node in (node for i, node in enumerate(nodes) if i not in removed):
        clone = onnx.NodeProto()  # copies: the originals go with ``del graph.node[:]``
        clone.CopyFrom(node)
        clone.input[:] = [alias.get(name, name) for name in node.input]
        kept.append(clone)
    del graph.node[:]
    graph.node.extend(kept)
    _drop_unused(graph)
    return model, ranges, conflicts


def _drop_unused(graph) -> None:
    """Remove the ``Constant`` nodes and initializers nothing reads any more (the scales and zero points)."""
    used = {name for node in graph.node for name in node.input} | {output.name for output in graph.output}
    constants = [n for n in graph.node if n.op_type == "Constant" and n.output[0] not in used]
    for node in constants:
        graph.node.remove(node)
    unused = [init for init in graph.initializer if init.name not in used]
    for init in unused:
        graph.initializer.remove(init)


def prepare(onnx_path: Path, settings: dict) -> DlaSource:
    """The graph for ``settings`` (``dla.builder_settings``); a new one is written beside ``onnx_path``.
    Settings recorded before routes existed (no ``route``) build the export as it is, as they did."""
    onnx_path = Path(onnx_path)
    route, precision = settings.get("route"), settings.get("precision")
    if route == dla_routes.STRONGLY_TYPED:
        return DlaSource(onnx_path, "exported in FP16 between float32 input and output casts (strongly typed)")
    if route == dla_routes.WEAKLY_TYPED and precision == "int8":
        onnx = _onnx()
        stripped, ranges, conflicts = strip_qdq(onnx.load(str(onnx_path)))
        out = onnx_path.with_name(onnx_path.stem + ".float.onnx")
        onnx.save(stripped, str(out))
        return DlaSource(out, "Q/DQ pairs removed, their amax set as the float network's dynamic ranges", ranges, conflicts)
    return DlaSource(onnx_path, "the float32 export as it is")
