"""The conditions a benchmark ran under, read from procfs/sysfs under a root path, and warnings about them.

CPU: model, governor, current/min/max frequency, load average before and after, threads.
Jetson (L4T sysfs, as ``jetson_clocks --show`` and jtop read it): nvpmodel mode
(``/var/lib/nvpmodel/status`` + names from ``/etc/nvpmodel.conf``), GPU devfreq clocks
(``/sys/class/devfreq/17000000.gpu``: Orin; ``*.ga10b``/``*.gv11b`` on older L4T), EMC
(``/sys/kernel/debug/bpmp/debug/clk/emc``: rate, max_rate, mrq_rate_locked), thermal zones,
throttling (soctherm over-current event counters ``/sys/class/hwmon/hwmon*/oc*_event_cnt`` and active
cooling-device throttles), the L4T release. ``jetson_clocks`` pins every CPU's and the GPU's minimum
frequency to its maximum and locks the EMC rate: that is what "locked" means here.
Every reader takes ``root`` so tests run them on recorded trees (tests/fixtures/jetson-*/).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch

from ...core import hostinfo
from ...core.hostinfo import read_text

CV_THRESHOLD = 0.10  # a point whose iteration times vary more than 10 % of their mean is not a stable reading
_GPU_DEVFREQ = ("17000000.gpu", "17000000.ga10b", "17000000.gv11b", "57000000.gpu", "gpu.0")


def _int(text: str | None) -> int | None:
    return int(text) if text is not None and text.strip().lstrip("-").isdigit() else None


def cpu_conditions(root: Path | str = "/") -> dict:
    """Governor(s) and frequencies (kHz) of every CPU with cpufreq, and whether min == max on all."""
    base = Path(root) / "sys/devices/system/cpu"
    cpus = sorted((p for p in base.glob("cpu[0-9]*") if (p / "cpufreq").is_dir()), key=lambda p: int(p.name[3:]))
    governors, current, minimum, maximum = set(), [], [], []
    for cpu in cpus:
        rel = cpu.relative_to(root).as_posix() + "/cpufreq/"
        governors.add(read_text(root, rel + "scaling_governor"))
        current.append(_int(read_text(root, rel + "scaling_cur_freq")))
        minimum.append(_int(read_text(root, rel + "scaling_min_freq")))
        maximum.append(_int(read_text(root, rel + "scaling_max_freq")) or _int(read_text(root, rel + "cpuinfo_max_freq")))
    known = [c for c in current if c is not None]
    return {
        "model": hostinfo.cpu_model() if str(root) == "/" else _cpuinfo_model(root),
        "cpus_with_cpufreq": len(cpus),
        "governor": ",".join(sorted(g for g in governors if g)) or None,
        "cur_khz": {"min": min(known), "max": max(known)} if known else None,
        "max_khz": max((m for m in maximum if m), default=None),
        "locked": bool(cpus) and all(lo is not None and lo == hi for lo, hi in zip(minimum, maximum)),
    }


def _cpuinfo_model(root) -> str | None:
    for line in (read_text(root, "proc/cpuinfo") or "").splitlines():
        if line.lower().startswith(("model name", "hardware", "cpu model")):
            return line.split(":", 1)[1].strip()
    return None


def load_average(root: Path | str = "/") -> list[float] | None:
    """1, 5 and 15 minute load averages (``/proc/loadavg``)."""
    text = read_text(root, "proc/loadavg")
    return [float(v) for v in text.split()[:3]] if text else None


def nvpmodel(root: Path | str = "/") -> dict | None:
    """``{"id": 2, "name": "MAXN_SUPER"}`` from nvpmodel's status file and its config, or None."""
    status = read_text(root, "var/lib/nvpmodel/status")
    match = re.search(r"pmode:(\d+)", status or "")
    if not match:
        return None
    mode = int(match.group(1))
    names = dict(re.findall(r"<\s*POWER_MODEL\s+ID=(\d+)\s+NAME=(\S+?)\s*>", read_text(root, "etc/nvpmodel.conf") or ""))
    return {"id": mode, "name": names.get(str(mode))}


def gpu_clocks(root: Path | str = "/") -> dict | None:
    """The Jetson GPU's devfreq: cur/min/max Hz and governor."""
    for name in _GPU_DEVFREQ:
        rel = f"sys/class/devfreq/{name}/"
        cur = _int(read_text(root, rel + "cur_freq"))
        if cur is not None:
            low, high = _int(read_text(root, rel + "min_freq")), _int(read_text(root, rel + "max_freq"))
            return {"cur_hz": cur, "min_hz": low, "max_hz": high, "governor": read_text(root, rel + "governor"), "locked": low == high}
    return None


def emc_clocks(root: Path | str = "/") -> dict | None:
    """EMC (memory) clock from the BPMP debugfs: rate, max_rate and whether the rate is locked."""
    rel = "sys/kernel/debug/bpmp/debug/clk/emc/"
    rate = _int(read_text(root, rel + "rate"))
    if rate is None:
        return None
    return {"rate_hz": rate, "max_hz": _int(read_text(root, rel + "max_rate")), "locked": read_text(root, rel + "mrq_rate_locked") == "1"}


def temperatures(root: Path | str = "/") -> dict[str, float]:
    """Thermal zone type -> degrees Celsius."""
    found = {}
    for zone in sorted(Path(root, "sys/class/thermal").glob("thermal_zone*")):
        rel = zone.relative_to(root).as_posix()
        kind, milli = read_text(root, rel + "/type"), _int(read_text(root, rel + "/temp"))
        if kind and milli is not None and milli > -40000:  # unconnected zones read -256 C
            found[kind] = round(milli / 1000.0, 1)
    return found


def throttle_flags(root: Path | str = "/") -> dict[str, int]:
    """Active throttles: over-current event counts (``oc1``...) > 0 and cooling devices in a throttling state."""
    flags = {}
    for counter in sorted(Path(root, "sys/class/hwmon").glob("hwmon*/oc*_event_cnt")):
        count = _int(read_text(root, counter.relative_to(root).as_posix()))
        if count:
            flags[counter.name.removesuffix("_event_cnt")] = count
    for device in sorted(Path(root, "sys/class/thermal").glob("cooling_device*")):
        rel = device.relative_to(root).as_posix()
        kind, state = read_text(root, rel + "/type") or device.name, _int(read_text(root, rel + "/cur_state"))
        if "throttl" in kind and state:
            flags[kind] = state
    return flags


def jetson_conditions(root: Path | str = "/") -> dict | None:
    """The Jetson section, or None off a Jetson."""
    l4t = hostinfo.l4t_release(root)
    if l4t is None and "jetson" not in (hostinfo.device_tree_model(root) or "").lower():
        return None
    gpu, emc = gpu_clocks(root), emc_clocks(root)
    cpu_locked = cpu_conditions(root)["locked"]
    return {
        "model": hostinfo.device_tree_model(root),
        "l4t": l4t,
        "nvpmodel": nvpmodel(root),
        "gpu": gpu,
        "emc": emc,
        "jetson_clocks": bool(cpu_locked and gpu and gpu["locked"] and (emc is None or emc["locked"])),
        "temperatures_c": temperatures(root),
        "throttle": throttle_flags(root),
    }


def read_conditions(root: Path | str = "/") -> dict:
    """Everything before a run: CPU, load average, threads, the Jetson section."""
    return {"cpu": cpu_conditions(root), "load_before": load_average(root), "load_after": None,
            "threads": torch.get_num_threads(), "pid_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "jetson": jetson_conditions(root)}


def finish_conditions(conditions: dict, root: Path | str = "/") -> dict:
    """After the run: load average, temperatures and throttles again (a run can heat a Jetson into throttling)."""
    conditions["load_after"] = load_average(root)
    if conditions.get("jetson") is not None:
        conditions["jetson"]["temperatures_after_c"] = temperatures(root)
        conditions["jetson"]["throttle_after"] = throttle_flags(root)
    return conditions


def coefficient_of_variation(times: list[float]) -> float | None:
    """Standard deviation / mean of one point's iteration times."""
    if len(times) < 2:
        return None
    mean = sum(times) / len(times)
    variance = sum((t - mean) ** 2 for t in times) / (len(times) - 1)
    return round(variance**0.5 / mean, 4) if mean > 0 else None


def condition_warnings(conditions: dict, results: list[dict], cv_threshold: float = CV_THRESHOLD) -> list[str]:
    """Sentences about what makes the numbers hard to reproduce."""
    warnings = []
    jetson, cpu = conditions.get("jetson"), conditions["cpu"]
    if jetson is not None and not jetson["jetson_clocks"]:
        mode = (jetson.get("nvpmodel") or {}).get("name") or "?"
        warnings.append(f"clocks are not locked (nvpmodel {mode}): run `sudo jetson_clocks` for reproducible numbers")
    elif jetson is None and cpu["cpus_with_cpufreq"] and cpu["governor"] != "performance" and not cpu["locked"]:
        warnings.append(f"CPU governor is {cpu['governor']}, clocks not locked: set the performance governor for reproducible numbers")
    if jetson is not None and (jetson.get("throttle") or jetson.get("throttle_after")):
        warnings.append(f"the Jetson throttled: {', '.join(sorted({**jetson.get('throttle', {}), **jetson.get('throttle_after', {})}))}")
    for entry in results:
        if entry.get("cv") is not None and entry["cv"] > cv_threshold:
            warnings.append(f"{entry['variant']} at batch {entry['batch']}: iteration times vary by {100 * entry['cv']:.0f} % "
                            f"(coefficient of variation > {100 * cv_threshold:.0f} %)")
    return warnings
