"""Facts about the machine a bundle is built or run on: CPU, GPU (+ compute capability), library versions.

Recorded in every bundle manifest as ``build_host`` and compared by ``bundle.load`` with the host
that loads it (TensorRT engines only run on the GPU model and TensorRT version that built them).
Nothing here imports TensorRT or ONNX Runtime just to read a version: versions come from package
metadata, so asking is cheap and never fails.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import platform
import socket
from functools import lru_cache
from pathlib import Path

import torch

from .. import __version__

# key in ``versions`` -> distribution names that provide it, first found wins.
_DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "torch": ("torch",),
    "torchvision": ("torchvision",),
    "resnet_edge": ("resnet-edge", "resnet_edge"),
    "onnx": ("onnx",),
    "onnxruntime": ("onnxruntime", "onnxruntime-gpu", "onnxruntime-directml", "onnxruntime-openvino"),
    "torch_tensorrt": ("torch-tensorrt", "torch_tensorrt"),
    "tensorrt": ("tensorrt", "tensorrt-cu13", "tensorrt-cu12", "tensorrt_cu13", "tensorrt_cu12", "tensorrt-libs"),
    "modelopt": ("nvidia-modelopt", "nvidia_modelopt"),
    "openvino": ("openvino",),
}


def package_version(key: str) -> str | None:
    """Installed version of a library named by its ``versions`` key (``"onnxruntime"``...), or None."""
    for distribution in _DISTRIBUTIONS.get(key, (key,)):
        try:
            return importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
    if key == "tensorrt":  # JetPack installs TensorRT's Python bindings from a .deb, without metadata
        return _module_version("tensorrt")
    if key == "resnet_edge":
        return __version__
    return None


def _module_version(module: str) -> str | None:
    if importlib.util.find_spec(module) is None:
        return None
    try:
        return getattr(importlib.import_module(module), "__version__", None)
    except Exception:  # a broken install must not break a manifest
        return None


def library_versions() -> dict[str, str | None]:
    """torch, torchvision, resnet_edge, onnx, onnxruntime, torch_tensorrt, tensorrt, modelopt, openvino (+ cuda, cudnn)."""
    versions = {key: package_version(key) for key in _DISTRIBUTIONS}
    try:
        versions["cuda"] = torch.version.cuda
        versions["cudnn"] = str(torch.backends.cudnn.version()) if torch.backends.cudnn.is_available() else None
    except Exception:
        versions["cuda"] = versions["cudnn"] = None
    return versions


@lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's marketing name (``/proc/cpuinfo``), else ``platform.processor()``, else the machine type."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cuda_available() -> bool:
    """A usable CUDA GPU is present (torch can see it)."""
    try:
        return torch.cuda.is_available()
    except Exception:
        return False


def gpu_info(index: int = 0) -> dict | None:
    """``{"name", "compute_capability": "8.7", "memory_mib"}`` of CUDA device ``index``, or None without one."""
    if not cuda_available():
        return None
    props = torch.cuda.get_device_properties(index)
    return {
        "name": props.name,
        "compute_capability": f"{props.major}.{props.minor}",
        "memory_mib": props.total_memory // (1 << 20),
    }


def jetson_model() -> str | None:
    """``"jetson-orin"`` or ``"jetson-xavier"`` on a Jetson module (any other Tegra: ``"jetson"``), else None."""
    model = ""
    for path in ("/proc/device-tree/model", "/sys/firmware/devicetree/base/model"):
        try:
            model = Path(path).read_bytes().decode(errors="ignore").strip("\x00 \n").lower()
            break
        except OSError:
            continue
    if not model and not Path("/etc/nv_tegra_release").exists():
        return None
    if "orin" in model:
        return "jetson-orin"
    if "xavier" in model:
        return "jetson-xavier"
    if "jetson" in model or "tegra" in model or Path("/etc/nv_tegra_release").exists():
        return "jetson"
    return None


def host_facts() -> dict:
    """The ``build_host`` object of a manifest: hostname, platform, cpu, cpu_count, gpu, jetson, versions."""
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "gpu": gpu_info(),
        "jetson": jetson_model(),
        "versions": library_versions(),
    }


def describe_host() -> str:
    """One line for logs and benchmark tables, e.g. ``AMD EPYC, 2 cores, no GPU``."""
    gpu = gpu_info()
    gpu_text = f"{gpu['name']} (sm {gpu['compute_capability']})" if gpu else "no GPU"
    return f"{cpu_model()}, {os.cpu_count()} cores, {gpu_text}"


# ------------------------------------------------- read under a root path (recorded trees in tests)


def read_text(root: Path | str, path: str) -> str | None:
    """The stripped text of ``root/path`` (NULs dropped, as in device-tree files), or None."""
    try:
        return (Path(root) / path.lstrip("/")).read_bytes().decode(errors="ignore").replace("\x00", "").strip()
    except OSError:
        return None


def device_tree_model(root: Path | str = "/") -> str | None:
    """The board's model string (``NVIDIA Jetson Orin Nano Developer Kit``) from the device tree, or None."""
    for path in ("proc/device-tree/model", "sys/firmware/devicetree/base/model"):
        text = read_text(root, path)
        if text:
            return text
    return None


def l4t_release(root: Path | str = "/") -> str | None:
    """The L4T release from ``/etc/nv_tegra_release`` (``# R36 (release), REVISION: 4.3, ...`` -> ``36.4.3``), or None."""
    text = read_text(root, "etc/nv_tegra_release")
    if not text:
        return None
    first = text.splitlines()[0]
    try:
        major = first.split("R", 1)[1].split()[0]
        revision = first.split("REVISION:", 1)[1].split(",")[0].strip()
    except IndexError:
        return None
    return f"{major}.{revision}"
