"""The ``resnet-edge`` click group: errors as one line and an exit code, logging, signals."""

from __future__ import annotations

import sys

import click

from ..core import logs, signals
from ..core.errors import ResnetEdgeError


def one_line(error: Exception) -> str:
    """The user-facing line of an error; DataLoader workers re-raise with their traceback prepended."""
    last = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
    return last.split(f"{type(error).__name__}: ", 1)[-1]


class ResnetEdgeGroup(click.Group):
    """A click group that turns the package's errors into one line on stderr and an exit code."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ResnetEdgeError as error:
            click.echo(f"error: {one_line(error)}", err=True)
            sys.exit(error.exit_code)
        except signals.Terminated as stop:
            click.echo(f"error: terminated by {stop}", err=True)
            sys.exit(128 + stop.signum)
        except KeyboardInterrupt:
            click.echo("error: interrupted", err=True)
            sys.exit(130)


@click.group(cls=ResnetEdgeGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="resnet-edge")
@click.option("-v", "--verbose", count=True, help="More detail on stderr (repeatable).")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors on stderr.")
def main(verbose: int, quiet: bool) -> None:
    """Build, train, fuse, quantize, compile and validate the ResNets of He et al. 2015."""
    logs.configure(-1 if quiet else verbose)
    signals.install()

