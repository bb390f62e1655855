"""SIGTERM and SIGHUP end a command the way Ctrl-C does: as an exception, so cleanup runs.

Every staging directory and temporary file is removed by ``except BaseException`` / ``finally``
blocks (``core.io``); a signal that killed the process outright would skip them. ``Terminated`` is a
``KeyboardInterrupt``, so code that already cleans up after Ctrl-C cleans up after these too.
"""

from __future__ import annotations

import signal


class Terminated(KeyboardInterrupt):
    """The process received SIGTERM or SIGHUP; ``signum`` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise(signum, _frame) -> None:
    raise Terminated(signum)


def install() -> None:
    """Turn SIGTERM and SIGHUP into ``Terminated`` in this (main) process, and ignore SIGXFSZ.

    A signal the parent left *ignored* stays ignored: ``nohup resnet-edge train ...`` ignores SIGHUP
    so that a long run survives the terminal closing, and overriding that would end it (Python treats
    an inherited ignored SIGINT the same way). With SIGXFSZ ignored, a write past ``ulimit -f`` fails
    with ``OSError(EFBIG)`` instead of killing the process, so the temporary file is removed and the
    error reported like a full disk.
    """
    for signum in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, _raise)
    if hasattr(signal, "SIGXFSZ"):
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
