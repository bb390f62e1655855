"""``resnet-edge models``: the registry as a table or JSON."""

from __future__ import annotations

import json

import click

from ..models import list_models, model_info


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def models(as_json: bool) -> None:
    """List every model: parameters, GFLOPs (multiply-adds x 1e-9), input size, family, block, depth."""
    rows = [model_info(name) for name in list_models()]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{'name':<11} {'family':<9} {'block':<11} {'depth':>5} {'params':>12} {'gflops':>7} {'input':>5}")
    for row in rows:
        click.echo(
            f"{row['name']:<11} {row['family']:<9} {row['block']:<11} {row['depth']:>5} "
            f"{row['params']:>12,} {row['gflops']:>7.3f} {row['input_size']:>5}"
        )
