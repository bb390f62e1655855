"""Jetson power from the INA3221 monitors' hwmon files, sampled in a background thread.

Each rail is ``in<N>_label`` (``VDD_IN``, ``VDD_CPU_GPU_CV``, ``VDD_SOC``), ``in<N>_input`` (mV) and
``curr<N>_input`` (mA) under ``/sys/bus/i2c/drivers/ina3221/*/hwmon/hwmon*`` (JetPack 5/6). ``VDD_IN``
is the whole module's input, so joules per image come from it when present (else the rails' sum).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from ...core.hostinfo import read_text

TOTAL_RAIL = "VDD_IN"


def ina3221_rails(root: Path | str = "/") -> dict[str, float]:
    """Rail label -> watts now; empty where there is no INA3221."""
    rails = {}
    for hwmon in sorted(Path(root).glob("sys/bus/i2c/drivers/ina3221/*/hwmon/hwmon*")):
        rel = hwmon.relative_to(root).as_posix()
        for label_file in sorted(hwmon.glob("in*_label")):
            index = label_file.name[2:].split("_")[0]
            label = read_text(root, f"{rel}/{label_file.name}")
            volts, amps = read_text(root, f"{rel}/in{index}_input"), read_text(root, f"{rel}/curr{index}_input")
            if label and volts and amps and volts.isdigit() and amps.isdigit() and not label.startswith("NC"):
                rails[label] = int(volts) * int(amps) / 1e6
    return rails


def total_watts(rails: dict[str, float]) -> float | None:
    """The module's power: ``VDD_IN`` where present, else the sum of the rails."""
    if not rails:
        return None
    return rails.get(TOTAL_RAIL, sum(rails.values()))


class PowerSampler:
    """``with PowerSampler() as power: ...``; then ``power.joules`` (None without rails) over the block."""

    def __init__(self, root: Path | str = "/", interval_s: float = 0.05) -> None:
        self.root, self.interval = root, interval_s
        self.samples: list[float] = []
        self.seconds = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            watts = total_watts(ina3221_rails(self.root))
            if watts is not None:
                self.samples.append(watts)
            self._stop.wait(self.interval)

    def __enter__(self) -> "PowerSampler":
        self._started = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.seconds = time.perf_counter() - self._started

    @property
    def mean_watts(self) -> float | None:
        return sum(self.samples) / len(self.samples) if self.samples else None

    @property
    def joules(self) -> float | None:
        return self.mean_watts * self.seconds if self.mean_watts is not None else None
