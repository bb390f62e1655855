"""The ONNX Runtime block probe for ``diagnose``: the artifact's graph with each block's output added as an
output (``onnx_graph.onnx_probe_model``), opened as the backend opens the artifact."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable, Sequence

import torch

from ..blocks import Probe
from ..onnx_graph import dequantized, import_onnx, onnx_probe_model


def ort_probe(model_path: Path, manifest: dict, blocks: Sequence[str], make_session: Callable[[Path], object]) -> Probe:
    """A probe running ``model_path`` with the block outputs added; ``make_session(path)`` opens it
    exactly as the backend opens the artifact (providers, optimisation level)."""
    onnx = import_onnx()
    probe, reads = onnx_probe_model(onnx.load(str(model_path)), blocks)
    with tempfile.TemporaryDirectory(prefix="resnet-edge-probe-") as work:
        path = Path(work) / "probe.onnx"
        onnx.save(probe, str(path))
        session = make_session(path)
    input_name = manifest["input"]["name"]
    names = list(dict.fromkeys(name for name, _, _ in reads.values()))

    def run(batch: torch.Tensor) -> dict[str, torch.Tensor]:
        array = batch.detach().to("cpu", torch.float32).contiguous().numpy()
        values = dict(zip(names, session.run(names, {input_name: array})))
        return {block: dequantized(values[name], scale, zero) for block, (name, scale, zero) in reads.items()}

    return run
