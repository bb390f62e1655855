"""``resnet-edge retarget``: rebuild a bundle for another target or backend from its stored FP32 weights and ranges."""

from __future__ import annotations

from pathlib import Path

import click

from ..backends import list_backends
from ..core import defaults
from ..pipelines.retarget import RetargetOptions, retarget_bundle
from .options import command_line


@click.command(name="retarget")
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--target", required=True, type=click.Choice(defaults.TARGETS), help="Where the new bundle runs (for onnxruntime INT8 it picks the Q/DQ form).")
@click.option("--backend", type=click.Choice(list_backends()), help="The new bundle's backend (default: the parent's).")
@click.option("--reference", type=click.Path(path_type=Path), metavar="WEIGHTS", help="The parent's FP32 weights where they are now, if moved (sha256-checked against the manifest).")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="The bundle directory to create.")
@click.option("--force", is_flag=True, help="Replace an existing bundle at --out.")
def retarget(bundle: Path, target: str, backend: str | None, reference: Path | None, out: Path, force: bool) -> None:
    """Rebuild BUNDLE for another --target or --backend without recalibrating.

    Uses the bundle's FP32 reference weights and, for INT8, its stored calibration ranges; checks the new
    artifact's INT8 simulator against the parent's and records the parent's manifest sha256. Built beside
    --out and renamed into place only when complete.
    """
    options = RetargetOptions(bundle, target, out, backend, reference, force, command_line(click.get_current_context()))
    result = retarget_bundle(options)
    manifest = result.manifest
    check = manifest["retarget"]["simulator_check"] or {}
    agreement = (f"; simulator top-1 agreement with the parent {check['top1_agreement']}%, max |diff| {check['max_abs_diff']:.4g}"
                 if check.get("compared") else "")
    click.echo(f"bundle: {result.path} ({manifest['arch']} {manifest['precision']} {manifest['backend']} for {manifest['target']}, "
               f"retargeted from {manifest['retarget']['parent']}{agreement})")
