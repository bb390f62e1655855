"""Block outputs of an ``aoti`` bundle for ``diagnose``: a probe package compiled like the bundle's.

A compiled package returns only what its graph returned, and Inductor fuses across the block
boundaries of the unfused model, so nothing inside it can be read afterwards. The probe is therefore
the bundle's recipe again (the FP32 reference, folded or fused as recorded, in the bundle's
precision and batch range, for its device) with ``graph.BlockOutputs`` returning each block's output
beside the logits, compiled by the same compiler path (and cache).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from torch import nn

from ..base import BatchSpec, BuildConfig
from . import compiler, graph
from .loader import check_package_host, load_package, package_device


def probe_config(manifest: dict, device: torch.device) -> BuildConfig:
    """The bundle's build settings, as the manifest recorded them."""
    return BuildConfig(
        arch=manifest.get("arch", "resnet"),
        precision=manifest["precision"],
        target=manifest.get("target", "cpu"),
        input_shape=tuple(int(v) for v in manifest["input"]["shape"][1:]),
        batch=BatchSpec.from_dict(manifest["input"]["batch"]),
        fused=bool((manifest.get("requires") or {}).get("fused_ops")),
        device=str(device),
    )


def block_probe(bundle_dir: Path, manifest: dict, blocks: list[str], device: str, reference: nn.Module):
    """NCHW float32 CPU batch -> ``{block: float32 CPU tensor}`` from a probe package of ``reference``."""
    check_package_host(bundle_dir, manifest)
    run_on = package_device(bundle_dir, manifest, device)
    config = probe_config(manifest, run_on)
    program = graph.export(graph.prepare(reference, config, blocks), config)
    with tempfile.TemporaryDirectory(prefix="resnet-edge-aoti-probe-") as work:
        package = Path(work) / "probe.pt2"
        compiler.compile_package(program, package, run_on, compiler.cxx_compiler())
        compiled = load_package(package, run_on)  # extracted by the loader: the file may go

    def run(batch: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.inference_mode():
            outputs = compiled(batch.to(run_on, torch.float32).contiguous())
        return {block: output.float().cpu() for block, output in zip(blocks, outputs[1:])}

    return run


def reading(manifest: dict, blocks: list[str]) -> str:
    """How the probe reads the block outputs, for the diagnose report."""
    fused = "fused" if (manifest.get("requires") or {}).get("fused_ops") else "folded"
    return (f"a probe package compiled by AOTInductor from the FP32 reference with the bundle's settings ({fused}, "
            f"{manifest['precision']}, same batch range), returning the {len(blocks)} block outputs beside the logits")
