"""TensorRT's layer-placement report (which layers run on the DLA, which on the GPU), captured from
the builder log torch-tensorrt forwards to Python logging."""

from __future__ import annotations

import contextlib
import logging
import re
from typing import Iterator

TRT_LOG_NAME = "torch_tensorrt [TensorRT Conversion Context]"  # torch_tensorrt/logging.py, 2.8 and 2.14


class _LogCapture(logging.Handler):
    """Keeps the layer-placement lines TensorRT's builder logs through torch-tensorrt's logger."""

    KEEP = ("Layers Running on", "[DlaLayer]", "[GpuLayer]")

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if any(key in message for key in self.KEEP):
            self.lines.append(message)


@contextlib.contextmanager
def capture_tensorrt_log() -> Iterator[_LogCapture]:
    """During a build, collect TensorRT's placement report (INFO or VERBOSE, depending on the release)."""
    logger = logging.getLogger(TRT_LOG_NAME)
    handler = _LogCapture()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)  # torch-tensorrt maps TensorRT's VERBOSE to DEBUG
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
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
