"""``resnet-edge validate``: compare a bundle with its FP32 reference; exit 1 on a regression."""

from __future__ import annotations

from pathlib import Path

import click

from ..core import defaults
from ..core.errors import CheckFailed
from ..core.io import write_atomic
from ..pipelines.validate import ValidateOptions, validate_bundle
from ..reports.validate import failure_message, format_table, junit_xml
from .options import class_map_options, command_line, device_option, report_option


@click.command()
@click.argument("bundle_dir", metavar="BUNDLE", type=click.Path(path_type=Path))
@click.option("--data", required=True, metavar="SPEC", help="Validation images: DIR, cifar10:DIR or shapes[:N] (its val split).")
@class_map_options()
@click.option("--reference", type=click.Path(dir_okay=False, path_type=Path), metavar="WEIGHTS", help="FP32 weights to compare with. Default: the ones the manifest names.")
@click.option("--max-top1-drop", default=defaults.MAX_TOP1_DROP, show_default=True, type=float, metavar="PTS", help="Largest allowed top-1 drop, in percentage points.")
@click.option("--min-agreement", default=defaults.MIN_AGREEMENT, show_default=True, type=float, metavar="FRAC", help="Smallest allowed top-1 agreement with the FP32 reference (0.99 = 99 %).")
@click.option("--baseline", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE.json", help="An earlier report: compiled top-1 and agreement must not fall more than --baseline-tolerance below it.")
@click.option("--update-baseline", is_flag=True, help="Write this run's report to --baseline (only when every threshold holds).")
@click.option("--baseline-tolerance", default=defaults.BASELINE_TOLERANCE, show_default=True, type=float, metavar="PTS", help="Allowed fall below the baseline, in percentage points.")
@report_option()
@click.option("--junit", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE.xml", help="Write the checks as JUnit XML for CI.")
@click.option("--limit", type=int, metavar="N", help="Use only the first N validation images.")
@click.option("--batch-size", default=defaults.VALIDATE_BATCH, show_default=True, type=int, metavar="N", help="Images per batch.")
@click.option("--workers", default=defaults.VALIDATE_WORKERS, show_default=True, type=int, metavar="N", help="Data-loading worker processes.")
@device_option(help="Where to run: auto is the bundle's backend choice; the FP32 reference runs on the GPU when the bundle does.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar (on a terminal).")
def validate(bundle_dir: Path, **options) -> None:
    """Check a compiled BUNDLE against its FP32 reference on validation images.

    Prints top-1/top-5 of both, the top-1 drop and agreement, logit error, cosine similarity and KL
    divergence. The data's labels are matched to the bundle's classes by name (any folder order);
    other names are refused unless --class-map or --by-index says how to match them.
    Exit 0 when every threshold holds, 1 when one fails, 2 for usage errors.
    """
    command = command_line(click.get_current_context())
    result = validate_bundle(ValidateOptions(bundle=bundle_dir, command=command, **options))
    if options["junit"] is not None:  # checked by validate_bundle before any work; rendered here
        result.written["junit"] = write_atomic(options["junit"], junit_xml(result.report))
    click.echo(format_table(result.report))
    for kind, path in result.written.items():
        click.echo(f"{kind}: {path}")
    if not result.passed:
        raise CheckFailed(failure_message(result.report))

