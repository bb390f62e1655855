"""TensorRT's builder log during a build: its layer-placement report captured, its VERBOSE records kept
out of the application's log.

torch-tensorrt forwards TensorRT's log to the Python logger ``TRT_LOG_NAME`` (``torch_tensorrt/logging.py``,
2.8 and 2.14), VERBOSE as DEBUG. The capture lowers that logger to DEBUG so it sees everything, but a
filter on the logger itself keeps what the logger would not have passed before (the VERBOSE flood, and
anything under its previous effective level): a logger filter runs before the logger's handlers and
before propagation, so those records never reach the application's handlers. Placement itself is
read from the engine inspector (``placement``); the log lines are kept for the build report.
"""

from __future__ import annotations

import contextlib
import logging
import re
from typing import Iterator

TRT_LOG_NAME = "torch_tensorrt [TensorRT Conversion Context]"  # torch_tensorrt/logging.py, 2.8 and 2.14


class _LogCapture(logging.Filter):
    """Keeps the layer-placement lines of every record; lets through only the records at or above
    ``passthrough_level`` (the logger's effective level before the capture)."""

    KEEP = ("Layers Running on", "[DlaLayer]", "[GpuLayer]")

    def __init__(self, passthrough_level: int) -> None:
        super().__init__()
        self.passthrough_level = passthrough_level
        self.lines: list[str] = []
        self.held_back = 0  # records kept inside the capture

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(key in message for key in self.KEEP):
            self.lines.append(message)
        if record.levelno >= self.passthrough_level:
            return True
        self.held_back += 1
        return False


@contextlib.contextmanager
def capture_tensorrt_log() -> Iterator[_LogCapture]:
    """During a build, collect TensorRT's placement report (INFO or VERBOSE, depending on the release)
    without letting the records the application did not ask for reach its handlers."""
    logger = logging.getLogger(TRT_LOG_NAME)
    level = logger.level
    capture = _LogCapture(logger.getEffectiveLevel())
    logger.addFilter(capture)
    logger.setLevel(logging.DEBUG)  # torch-tensorrt maps TensorRT's VERBOSE to DEBUG
    try:
        yield capture
    finally:
        logger.removeFilter(capture)
        logger.setLevel(level)


def layer_placement(lines: list[str]) -> dict | None:
    """Parse TensorRT's "Layers Running on DLA / GPU" report from its builder log.

    TensorRT logs (INFO) ``---------- Layers Running on DLA ----------`` followed by ``[DlaLayer] ...``
    lines, then the same for the GPU with ``[GpuLayer] ...``. ``None`` when the log has no report.
    """
    dla, gpu = [], []
    for line in lines:
        for text in line.splitlines():
            match = re.search(r"\[(DlaLayer|GpuLayer)\]\s*(.+)", text)
            if match:
                (dla if match.group(1) == "DlaLayer" else gpu).append(match.group(2).strip())
    if not dla and not gpu:
        return None
    return {"reported_by": "TensorRT builder log", "dla": dla, "gpu": gpu, "dla_count": len(dla), "gpu_count": len(gpu)}
