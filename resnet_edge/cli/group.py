"""The ``resnet-edge`` click group: errors as one line and an exit code, logging, signals.

Every error a user can get is one line on stderr, ``error: <message>``, and an exit code:
2 for a usage error (click's own included: unknown option, bad choice, missing option), 1 for a
failed check or an output that could not be written (full disk, file size limit, no permission),
128 + N for signal N (130 for Ctrl-C). docs/errors.md lists them all.
"""

from __future__ import annotations

import errno
import sys

import click

from ..core import logs, signals
from ..core.errors import ResnetEdgeError

# Errors of writing an output: the command cannot finish, and nothing half-written was left.
WRITE_ERRNOS = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS)


def one_line(error: Exception) -> str:
    """The user-facing line of an error; DataLoader workers re-raise with their traceback prepended."""
    last = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
    return last.split(f"{type(error).__name__}: ", 1)[-1]


def write_error_line(error: OSError) -> str:
    """One line for an ``OSError`` of writing a file: which file and why (full disk, size limit, permission)."""
    reason = error.strerror or errno.errorcode.get(error.errno or 0, type(error).__name__)
    where = f" {error.filename}" if error.filename else " an output"
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"cannot access{where}: {reason}; check its permissions or choose another path"
    return f"cannot write{where}: {reason}; nothing was written (free space, raise the limit or choose another path)"


class OneLineUsageError(click.ClickException):
    """A click usage error shown as ``error: <message>`` alone (no Usage/Try lines); exit code 2."""

    exit_code = 2

    def show(self, file=None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def _one_line_usage(error: click.UsageError) -> click.ClickException:
    if isinstance(error, click.exceptions.NoArgsIsHelpError):
        return error  # bare `resnet-edge` or `resnet-edge CMD`: the help is the point
    return OneLineUsageError(error.format_message())


class ResnetEdgeGroup(click.Group):
    """A click group that turns the package's errors into one line on stderr and an exit code."""

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as error:
            raise _one_line_usage(error) from None

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except click.UsageError as error:
            raise _one_line_usage(error) from None
        except ResnetEdgeError as error:
            click.echo(f"error: {one_line(error)}", err=True)
            sys.exit(error.exit_code)
        except OSError as error:
            if error.errno not in WRITE_ERRNOS:
                raise
            click.echo(f"error: {write_error_line(error)}", err=True)
            sys.exit(1)
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
