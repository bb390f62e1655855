"""The two kinds of failure the command line reports without a traceback.

``UsageError``: the user asked for something that cannot work (bad arch, missing file, wrong
checkpoint); exit code 2. ``CheckFailed``: the command ran and a check it performs failed (an
accuracy regression, a hash mismatch); exit code 1.
"""


class ResnetEdgeError(Exception):
    """Base class: a one-line, user-facing message and the process exit code it maps to."""

    exit_code = 2


class UsageError(ResnetEdgeError):
    """Bad input or arguments: exit code 2."""

    exit_code = 2


class CheckFailed(ResnetEdgeError):
    """A check the command performs did not hold: exit code 1."""

    exit_code = 1


def require_at_least_one(values: dict[str, int | None], show_value: bool = True) -> None:
    """The shared "must be at least 1" check: a ``UsageError`` for the first ``flag -> value`` below 1
    (None: not given), saying ``{flag} must be at least 1`` and, with ``show_value``, what was given."""
    for flag, value in values.items():
        if value is not None and value < 1:
            raise UsageError(f"{flag} must be at least 1" + (f", got {value}" if show_value else ""))
