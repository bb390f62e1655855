"""``resnet-edge doctor``: the installed stack against the support matrix; exit 1 on a broken pairing."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..core.errors import CheckFailed, UsageError
from ..core.io import write_json
from ..pipelines.doctor import collect_facts, diagnose


@click.command()
@click.option("--facts", "facts_file", type=click.Path(dir_okay=False, exists=True, path_type=Path), metavar="FILE.json",
              help="Check facts recorded on another host (by doctor --record) instead of this one.")
@click.option("--record", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE.json", help="Write this host's facts to FILE.json.")
def doctor(facts_file: Path | None, record: Path | None) -> None:
    """Check Python, torch, torchvision, torch-tensorrt, TensorRT, CUDA, cuDNN, JetPack, ModelOpt, ONNX Runtime,
    OpenVINO, the fused ops and the C++ app's packages against the support matrix, and say what to install."""
    if facts_file is not None:
        try:
            facts = json.loads(facts_file.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise UsageError(f"{facts_file} is not JSON ({error})") from None
    else:
        facts = collect_facts()
    if record is not None:
        write_json(record, facts)
    result = diagnose(facts)
    click.echo(f"device: {result.device_text} -> {result.device}")
    click.echo(f"{'component':<18} {'found':<22} {'expected':<26} status")
    for row in result.rows:
        line = f"{row.component:<18} {str(row.found or '-'):<22} {row.expected:<26} {row.status}"
        click.echo(line + (f"  ({row.hint})" if row.hint else ""))
    click.echo(f"install for {result.device}:")
    for line in result.install:
        click.echo(f"  {line}")
    if result.broken:
        raise CheckFailed(f"broken: {', '.join(row.component for row in result.broken)}")
