"""What an AOTInductor package needs from the host that loads it, recorded at build, checked at load.

A package is native code: its shared library was built for one libtorch ABI (the torch version),
one CPU architecture and, by Inductor's default ``-march=native``, the instruction-set extensions of
the CPU that compiled it (AVX-512 and VNNI on this development machine); a CUDA package holds
kernels for one compute capability. Loading it elsewhere fails deep inside libtorch or dies with
SIGILL, so ``requires`` records all four and ``check_requirements`` names the first that differs.
"""

from __future__ import annotations

import platform
import re
from pathlib import Path

import torch

from ...core import hostinfo
from ...core.errors import CheckFailed

# x86 /proc/cpuinfo flags that are instruction-set extensions a compiler may use with -march=native;
# the rest (hypervisor, constant_tsc...) differ between machines without changing what code runs.
_X86_ISA = re.compile(r"^(sse|ssse|avx|fma|f16c|bmi|adx|amx|gfni|vaes|vpclmulqdq|sha_ni|movbe|popcnt|abm|lzcnt|aes|pclmulqdq|xsave)")


def cpu_isa_flags(cpuinfo: str | None = None) -> list[str]:
    """The instruction-set extensions this CPU reports (x86 ``flags``, Arm ``Features``), sorted."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return []
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags = value.split()
            if key.strip() == "flags":
                flags = [flag for flag in flags if _X86_ISA.match(flag)]
            return sorted(set(flags))
    return []


def build_requirements(device: torch.device, fused: bool) -> dict:
    """The manifest's ``requires`` for a package compiled here for ``device``."""
    gpu = hostinfo.gpu_info(device.index or 0) if device.type == "cuda" else None
    return {
        "device": "cuda" if device.type == "cuda" else "cpu",
        "gpu": {"name": gpu["name"], "compute_capability": gpu["compute_capability"]} if gpu else None,
        "tensorrt": None,
        "fused_ops": bool(fused),
        "torch": torch.__version__,
        "cpu_arch": platform.machine(),
        "cpu_isa": cpu_isa_flags(),
    }


def check_requirements(bundle_dir: Path, requires: dict) -> None:
    """Refuse (``CheckFailed``, one line naming what differs) a package this host cannot run."""
    wanted_torch = requires.get("torch")
    if wanted_torch and wanted_torch != torch.__version__:
        raise CheckFailed(f"bundle {bundle_dir} is an AOTInductor package built with torch {wanted_torch} and this host has "
                          f"torch {torch.__version__}; packages run only on the torch that compiled them: recompile it here")
    wanted_arch = requires.get("cpu_arch")
    if wanted_arch and wanted_arch != platform.machine():
        raise CheckFailed(f"bundle {bundle_dir} was compiled for {wanted_arch} CPUs and this host is {platform.machine()}; "
                          f"recompile it here with resnet-edge compile --backend aoti")
    missing = sorted(set(requires.get("cpu_isa") or ()) - set(cpu_isa_flags()))
    if missing:
        raise CheckFailed(f"bundle {bundle_dir} was compiled for a CPU with {', '.join(missing[:6])}"
                          f"{' ...' if len(missing) > 6 else ''}, which this CPU lacks; recompile it here")
    # requires.device / requires.gpu (compute capability): bundle.manifest.check_host, before any backend loads.
