"""Which layers of a built engine run on the DLA and which on the GPU, from TensorRT's engine
inspector (``IEngineInspector.get_engine_information(LayerInformationFormat.JSON)``), not from the
builder log (whose wording and level changed between releases).

The inspector's JSON is ``{"Layers": [...], "Bindings": [...]}``; each layer is a plain name
(``ProfilingVerbosity.LAYER_NAMES_ONLY``, the default) or an object with ``Name``, ``LayerType`` and
more (``ProfilingVerbosity.DETAILED``, which the DLA build sets). A DLA subgraph is one layer whose
type (or, names only, whose name) says DLA; every other layer runs on the GPU.
"""

from __future__ import annotations

import json


def _is_dla(layer) -> bool:
    if isinstance(layer, str):
        return "dla" in layer.lower()
    kind = str(layer.get("LayerType", "")) + " " + str(layer.get("Origin", "")) + " " + str(layer.get("TacticName", ""))
    return "dla" in kind.lower()


def _name(layer) -> str:
    return layer if isinstance(layer, str) else str(layer.get("Name", "?"))


def placement_of(information: str | dict | None) -> dict | None:
    """``{"reported_by", "dla", "gpu", "dla_count", "gpu_count"}`` from the inspector's JSON, or ``None``
    when there is none (an inspector that returned nothing, or an engine without layer information)."""
    if not information:
        return None
    data = json.loads(information) if isinstance(information, str) else information
    layers = data.get("Layers") or []
    if not layers:
        return None
    dla = [_name(layer) for layer in layers if _is_dla(layer)]
    gpu = [_name(layer) for layer in layers if not _is_dla(layer)]
    return {"reported_by": "TensorRT engine inspector", "dla": dla, "gpu": gpu, "dla_count": len(dla), "gpu_count": len(gpu)}
