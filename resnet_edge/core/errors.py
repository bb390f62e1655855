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
