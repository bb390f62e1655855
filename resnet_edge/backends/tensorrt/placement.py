"""Which layers of a built engine run on the DLA and which on the GPU, read from TensorRT's engine
inspector (``IEngineInspector.get_engine_information(LayerInformationFormat.JSON)``), not from the
builder log (whose wording and level changed between releases).

The inspector's JSON is ``{"Layers": [...], "Bindings": [...]}``. With ``ProfilingVerbosity.DETAILED``
(the DLA build sets it) each layer is an object: ``Name``, ``LayerType``, ``Inputs`` / ``Outputs`` (each
with ``Name``, ``Dimensions``, ``Format/Datatype``), ``TacticName`` and more (the schema NVIDIA's
trt-engine-explorer reads); with ``LAYER_NAMES_ONLY`` it is a plain name.

A DLA subgraph is one engine layer named ``{ForeignNode[first...last]}`` (NVIDIA's sampleCudla log shows
``[DlaLayer] {ForeignNode[...]}``; NVIDIA/TensorRT#3143): only its first and last network layers are
named, so the layers it holds are found by their position in the network (``network_layers``, recorded
at build time). The GPU's Myelin subgraphs are named ``{ForeignNode[...]}`` too, with ``LayerType``
``Myelin``: so a ForeignNode is DLA when its type says DLA, or when it has a type that is not Myelin; a
ForeignNode without a type (names-only output) is ``undetermined`` and never counted as DLA. Any other
layer whose type, tactic or origin names the DLA is a DLA layer; the rest run on the GPU.
"""

from __future__ import annotations

import json
import re
from collections import Counter

from ...core.errors import CheckFailed

FOREIGN_NODE = re.compile(r"^\{ForeignNode\[(.*)\]\}$", re.S)
_PRECISIONS = (("int8", ("int8",)), ("bf16", ("bfloat16", "bf16")), ("fp16", ("fp16", "half")), ("fp32", ("fp32", "float")))


def _kind(layer) -> str:
    fields = ("LayerType", "ParameterType", "Origin", "TacticName")
    return " ".join(str(layer.get(field, "")) for field in fields).strip().lower()


def _name(layer) -> str:
    return layer if isinstance(layer, str) else str(layer.get("Name", "?"))


def layer_device(layer) -> str:
    """``"dla"``, ``"gpu"`` or ``"undetermined"`` for one inspector layer (see the module docstring)."""
    foreign = FOREIGN_NODE.match(_name(layer)) is not None
    kind = "" if isinstance(layer, str) else _kind(layer)
    if "dla" in kind:
        return "dla"
    if foreign:
        if not kind:
            return "undetermined"
        return "gpu" if "myelin" in kind else "dla"
    return "gpu"


def constituents(name: str, order: dict[str, int], names: list[str]) -> list[str]:
    """The network layers an engine layer holds: a ForeignNode's ``first...last`` range in network order
    (a single name for a one-layer node), a GPU fusion's ``a + b + c`` parts; only names the network has."""
    match = FOREIGN_NODE.match(name)
    if match is None:
        return [part for part in name.split(" + ") if part in order]
    inner = match.group(1)
    if inner in order:
        return [inner]
    start = inner.find("...")
    while start >= 0:  # a layer name may itself contain "...": try every split
        first, last = inner[:start], inner[start + 3:]
        if first in order and last in order and order[first] <= order[last]:
            return names[order[first]:order[last] + 1]
        start = inner.find("...", start + 1)
    return []


def _precisions(layers: list) -> dict[str, int]:
    """How many output tensors of ``layers`` the inspector reports in each precision (``Format/Datatype``)."""
    counts: Counter = Counter()
    for layer in layers:
        for tensor in layer.get("Outputs", []) if isinstance(layer, dict) else []:
            text = str(tensor.get("Format/Datatype", "")).lower()
            counts[next((name for name, words in _PRECISIONS if any(w in text for w in words)), "other")] += 1
    return dict(sorted(counts.items()))


def _convolutions(by_device: dict[str, list], network_layers: list[list[str]]) -> dict:
    """The network's convolutions and which of them sit inside a DLA layer."""
    names = [name for name, _kind_ in network_layers]
    order = {name: index for index, name in enumerate(names)}
    on_dla = {part for layer in by_device["dla"] for part in constituents(_name(layer), order, names)}
    convolutions = [name for name, kind in network_layers if "CONVOLUTION" in kind.upper()]
    placed = [name for name in convolutions if name in on_dla]
    return {
        "total": len(convolutions),
        "on_dla": len(placed),
        "fraction": round(len(placed) / len(convolutions), 4) if convolutions else None,
        "not_on_dla": [name for name in convolutions if name not in on_dla],
    }


def placement_of(information: str | dict | None, network_layers: list[list[str]] | None = None) -> dict | None:
    """``{"reported_by", "dla", "gpu", "dla_count", "gpu_count", ...}`` from the inspector's JSON, or ``None``
    when there is none. With ``network_layers`` (``[[name, type], ...]`` in network order) it adds
    ``convolutions``: how many of the network's convolutions are inside DLA subgraphs, and which are not."""
    if not information:
        return None
    data = json.loads(information) if isinstance(information, str) else information
    layers = data.get("Layers") or []
    if not layers:
        return None
    by_device: dict[str, list] = {"dla": [], "gpu": [], "undetermined": []}
    for layer in layers:
        by_device[layer_device(layer)].append(layer)
    placement = {
        "reported_by": "TensorRT engine inspector",
        "dla": [_name(layer) for layer in by_device["dla"]],
        "gpu": [_name(layer) for layer in by_device["gpu"]],
        "undetermined": [_name(layer) for layer in by_device["undetermined"]],
        "dla_count": len(by_device["dla"]),
        "gpu_count": len(by_device["gpu"]),
        "precisions": {"dla": _precisions(by_device["dla"]), "gpu": _precisions(by_device["gpu"])},
    }
    if network_layers is not None:
        placement["convolutions"] = _convolutions(by_device, network_layers)
    return placement


def check_dla_fraction(placement: dict | None, min_fraction: float) -> None:
    """``CheckFailed`` when fewer than ``min_fraction`` of the network's convolutions run on the DLA, naming
    those that fell back to the GPU; also when the inspector gave nothing to count."""
    convolutions = (placement or {}).get("convolutions")
    if not convolutions or not convolutions["total"]:
        raise CheckFailed("the DLA engine's layer placement could not be read from TensorRT's engine inspector; "
                          "nothing shows that it runs on the DLA")
    if convolutions["on_dla"] < min_fraction * convolutions["total"]:
        fell_back = convolutions["not_on_dla"]
        shown = ", ".join(fell_back[:8]) + (f" and {len(fell_back) - 8} more" if len(fell_back) > 8 else "")
        raise CheckFailed(
            f"only {convolutions['on_dla']} of {convolutions['total']} convolutions run on the DLA "
            f"(--min-dla-fraction {min_fraction:g}); on the GPU: {shown}"
        )
