"""``resnet-edge compile``: build a deployment bundle (artifact + manifest.json + labels.txt)."""

from __future__ import annotations

from pathlib import Path

import click

from ..backends import BACKEND_CHOICES
from ..core import defaults
from ..core.errors import UsageError
from ..pipelines.compile import CompileOptions, compile_bundle
from .options import arch_option, calibration_options, class_map_options, command_line, weights_option


@click.command(name="compile")
@arch_option()
@weights_option()
@click.option("--random-weights", is_flag=True, help="Untrained weights, recorded as such: for speed measurements only.")
@click.option("--fp32", is_flag=True, help="Full precision.")
@click.option("--fp16", is_flag=True, help="Half precision.")
@click.option("--bf16", is_flag=True, help="bfloat16 (aoti on a CUDA GPU, unfused: the fused CUDA kernels are float32/float16).")
@click.option("--int8", is_flag=True, help="INT8 with calibration (needs --calib-data or --calib-set).")
@calibration_options("Calibration images: DIR, cifar10:DIR or shapes[:N] (train split; --calib-images drawn with a fixed seed).")
@click.option("--backend", default=defaults.BACKEND, show_default=True, type=click.Choice(BACKEND_CHOICES), help="auto: tensorrt with a CUDA GPU and torch-tensorrt; for a CPU target, every installed CPU runtime is built and timed and the fastest kept.")
@click.option("--target", type=click.Choice(defaults.TARGETS), help="Where the bundle runs. Default: cpu for onnxruntime/torchscript; this GPU for tensorrt. For onnxruntime INT8 it picks the Q/DQ placement.")
@click.option("--batch", type=int, metavar="N", help="Static batch size.")
@click.option("--dynamic-batch", metavar="MIN:OPT:MAX", help="Batch range (default 1:1:64).")
@click.option("--dla-core", type=int, metavar="N", help="TensorRT on Jetson: run on DLA core N.")
@click.option("--workspace-mb", type=int, metavar="N", help="TensorRT builder workspace.")
@click.option("--min-dla-fraction", type=float, metavar="F", help="TensorRT --dla-core: fail (exit 1) when fewer than this share of the convolutions run on the DLA (default 0.9).")
@click.option("--tf32", is_flag=True, default=None, help="TensorRT --fp32: allow TF32 kernels (faster, ~1e-3 off; default: true FP32, recorded in the manifest).")
@click.option("--hardware-compatible", is_flag=True, default=None, help="TensorRT: an engine for any Ampere-or-newer GPU (slower; where the installed torch-tensorrt supports it).")
@click.option("--fused/--no-fused", default=None, help="Swap blocks for the resnet_edge fused ops (torchscript; default: when the ops are built).")
@click.option("--val-data", metavar="SPEC", help="Also measure top-1 on this data's val split: FP32, the bundle, and simulated INT8.")
@click.option("--val-images", type=int, metavar="N", help="Use only the first N validation images.")
@class_map_options("--val-data (and the calibration set)")
@click.option("--max-top1-drop", type=float, metavar="PTS", help="INT8: keep the most sensitive layers in FP16/FP32, greedily, until the simulated top-1 drop on --val-data is within PTS points (recorded in the manifest).")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="The bundle directory to create.")
@click.option("--force", is_flag=True, help="Replace an existing bundle at --out.")
def compile_command(**options) -> None:
    """Compile a ResNet into a deployable bundle (TensorRT, ONNX Runtime, OpenVINO, AOTInductor or TorchScript).

    The bundle is built beside --out and renamed into place only when complete and checked against the
    FP32 model; on any error nothing is left behind.
    """
    # Three flags, one choice: each is its own boolean so that giving two is seen, not resolved silently.
    given = [name for name in defaults.PRECISIONS if options.pop(name)]
    if not given:
        raise UsageError(f"pass one of {defaults.precision_flags()}")
    if len(given) > 1:
        raise UsageError(f"pass only one of {defaults.precision_flags()} (got {' and '.join('--' + name for name in given)})")
    options["precision"] = given[0]
    command = command_line(click.get_current_context())
    result = compile_bundle(CompileOptions(**options, command=command))
    manifest = result.manifest
    size = sum((result.path / name).stat().st_size for name in manifest["files"])
    click.echo(
        f"bundle: {result.path} ({manifest['arch']} {manifest['precision']} {manifest['backend']} for {manifest['target']}, "
        f"{len(manifest['files']) + 1} files, {size / 1e6:.1f} MB) in {manifest['build']['seconds']:.1f} s"
    )

