"""Logging: the library logs through ``logging.getLogger(__name__)``; the command line owns the handler.

Records are printed as the command line always printed them: an INFO record as its message, a
WARNING record as ``warning: <message>``. ``collect_warnings`` lets a pipeline return the warnings
it raised (e.g. ``CompileResult.warnings``) without matching text.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from typing import Iterator

ROOT = "resnet_edge"


class _CliFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.levelno >= logging.WARNING:
            return f"warning: {message}"
        return message


def configure(verbosity: int = 0, stream=None) -> None:
    """Send the package's records to stderr: -q (verbosity < 0) shows warnings only, -v debug too."""
    logger = logging.getLogger(ROOT)
    for handler in list(logger.handlers):
        if getattr(handler, "_resnet_edge_cli", False):
            logger.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler._resnet_edge_cli = True  # type: ignore[attr-defined]
    handler.setFormatter(_CliFormatter())
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING if verbosity < 0 else logging.DEBUG if verbosity > 0 else logging.INFO)
    logger.propagate = False


class _Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextlib.contextmanager
def collect_warnings() -> Iterator[list[str]]:
    """Yield a list that fills with the messages of WARNING records the package logs inside the block."""
    logger = logging.getLogger(ROOT)
    collector = _Collector()
    logger.addHandler(collector)
    if logger.level == logging.NOTSET or logger.level > logging.WARNING:
        previous, logger.level = logger.level, logging.WARNING
    else:
        previous = None
    try:
        yield collector.messages
    finally:
        logger.removeHandler(collector)
        if previous is not None:
            logger.setLevel(previous)
