"""``doctor``: the installed stack checked against ``core/support_matrix.json``, and what to install.

``collect_facts(root)`` reads this host (under ``root``, so recorded trees can stand in for a Jetson);
``diagnose(facts)`` turns facts into rows and install advice without touching the host, so recorded
environments (tests/fixtures/doctor/*.json) are checked exactly like a live one. A row is ``broken`` when
a pairing cannot work (torchvision or torch-tensorrt built for another torch, TensorRT not the one
torch-tensorrt or JetPack needs, a CPU-only torch on a GPU host); doctor exits 1 then.
"""

from __future__ import annotations

import json
import platform
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from ... import ops
from ...core import hostinfo

OK, MISSING, WARN, BROKEN = "ok", "missing", "warn", "broken"
_OPTIONAL = ("onnxruntime", "openvino", "modelopt", "onnx")


@dataclass
class Row:
    """One checked component: what was found, what the matrix expects, the verdict and a hint."""

    component: str
    found: str | None
    expected: str
    status: str
    hint: str = ""


@dataclass
class Diagnosis:
    """Every row, the detected device (``cpu``, ``datacenter`` or ``jetson``) and what to install."""

    device: str
    device_text: str
    rows: list[Row] = field(default_factory=list)
    install: list[str] = field(default_factory=list)

    @property
    def broken(self) -> list[Row]:
        return [row for row in self.rows if row.status == BROKEN]


def support_matrix() -> dict:
    """The support matrix shipped with the package."""
    return json.loads(resources.files("resnet_edge.core").joinpath("support_matrix.json").read_text())


def version_tuple(text: str | None) -> tuple[int, ...]:
    """``"2.14.1+cu128"`` -> ``(2, 14, 1)``; ``()`` for None."""
    return tuple(int(part) for part in re.findall(r"\d+", (text or "").split("+")[0])[:3])


def minor(text: str | None) -> str | None:
    """``"2.14.1"`` -> ``"2.14"``."""
    parts = version_tuple(text)
    return ".".join(map(str, parts[:2])) if len(parts) >= 2 else None


def cudnn_text(value: str | None) -> str | None:
    """torch reports cuDNN as one integer (``92400``, ``8906``): as ``9.24.0`` / ``8.9.6``."""
    if not value or not str(value).isdigit():
        return value
    number = int(value)
    if number >= 10000:
        return f"{number // 10000}.{number % 10000 // 100}.{number % 100}"
    return f"{number // 1000}.{number % 1000 // 100}.{number % 100}"


# --------------------------------------------------------------------------------------- reading


def _run(*command: str) -> str | None:
    if shutil.which(command[0]) is None:
        return None
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else None


def _cpp_versions(matrix: dict) -> dict[str, str | None]:
    cmake = _run("cmake", "--version")
    found = {"cmake": (re.findall(r"\d+\.\d+(?:\.\d+)?", cmake) or [None])[0] if cmake else None}
    for key in ("opencv", "nlohmann_json"):
        spec = matrix["cpp"][key]
        found[key] = _run("pkg-config", "--modversion", spec["pkg_config"]) or _run("dpkg-query", "-W", "-f=${Version}", spec["apt"])
    return found


def collect_facts(root: Path | str = "/") -> dict:
    """This host's facts as ``diagnose`` reads them (and as ``doctor --record`` writes them)."""
    versions = hostinfo.library_versions()
    usable, reason = ops.fused_ops_status()
    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "device_model": hostinfo.device_tree_model(root),
        "l4t": hostinfo.l4t_release(root),
        "gpu": hostinfo.gpu_info(),
        "versions": versions,
        "fused_ops": {"usable": usable, "reason": reason},
        "cpp": _cpp_versions(support_matrix()),
    }


# ------------------------------------------------------------------------------------- checking


def detect_device(facts: dict) -> tuple[str, str]:
    """(``jetson`` | ``datacenter`` | ``cpu``, a description)."""
    model = facts.get("device_model") or ""
    if facts.get("l4t") or "jetson" in model.lower():
        return "jetson", f"{model or 'NVIDIA Jetson'} (L4T {facts.get('l4t') or '?'})"
    gpu = facts.get("gpu")
    if gpu:
        return "datacenter", f"{gpu['name']} (compute capability {gpu['compute_capability']})"
    return "cpu", f"CPU only ({facts.get('machine') or '?'})"


def _core_rows(facts: dict, matrix: dict, device: str) -> list[Row]:
    versions = facts["versions"]
    low, high = matrix["python"]["min"], matrix["python"]["max"]
    python_ok = version_tuple(low) <= version_tuple(facts["python"])[:2] <= version_tuple(high)
    rows = [Row("Python", facts["python"], f"{low} - {high}", OK if python_ok else BROKEN, "" if python_ok else f"use Python {low} to {high}")]
    torch = versions.get("torch")
    tested = matrix["torch"]["tested"]
    if not torch or version_tuple(torch) < version_tuple(matrix["torch"]["min"]):
        rows.append(Row("torch", torch, f">= {matrix['torch']['min']} (tested {tested})", BROKEN, f"install torch {tested}"))
        return rows
    rows.append(Row("torch", torch, f"tested {tested}", OK if minor(torch) == minor(tested) else WARN))
    vision, wanted = versions.get("torchvision"), matrix["torchvision_for_torch"].get(minor(torch))
    status = OK if vision and minor(vision) == wanted else (BROKEN if vision else MISSING)
    rows.append(Row("torchvision", vision, wanted or "?", status, "" if status == OK else f"torchvision {wanted}.x pairs with torch {minor(torch)}"))
    cuda = versions.get("cuda")
    if device != "cpu" and not cuda:
        rows.append(Row("CUDA (torch)", None, "a CUDA build of torch", BROKEN, "this torch is a CPU-only build on a GPU host"))
    else:
        rows.append(Row("CUDA (torch)", cuda, "-" if device == "cpu" else "a CUDA build", OK))
    rows.append(Row("cuDNN", cudnn_text(versions.get("cudnn")), "-", OK if versions.get("cudnn") or device == "cpu" else WARN))
    return rows


def _tensorrt_rows(facts: dict, matrix: dict, device: str, jetpack: dict | None) -> list[Row]:
    versions = facts["versions"]
    torch, ttrt, trt = versions.get("torch"), versions.get("torch_tensorrt"), versions.get("tensorrt")
    rows = []
    if ttrt:
        status = OK if minor(ttrt) == minor(torch) else BROKEN
        rows.append(Row("torch-tensorrt", ttrt, f"{minor(torch)}.x (= torch)", status, "" if status == OK else f"install torch-tensorrt {minor(torch)}.x"))
    else:
        rows.append(Row("torch-tensorrt", None, f"{minor(torch)}.x", MISSING if device != "cpu" else OK, "needed for --backend tensorrt"))
    wanted = (jetpack or {}).get("tensorrt") if device == "jetson" else matrix["tensorrt_for_torch_tensorrt"].get(minor(ttrt or torch))
    if trt:
        status = OK if minor(trt) == wanted or not wanted else BROKEN
        hint = "" if status == OK else (f"JetPack ships TensorRT {wanted}" if device == "jetson" else f"torch-tensorrt {minor(ttrt or torch)} is built for TensorRT {wanted}")
        rows.append(Row("TensorRT", trt, wanted or "-", status, hint))
    else:
        rows.append(Row("TensorRT", None, wanted or "-", MISSING if device != "cpu" else OK))
    return rows


def _jetson_rows(facts: dict, jetpack: dict | None) -> list[Row]:
    l4t = facts.get("l4t")
    if jetpack is None:
        return [Row("JetPack/L4T", l4t, "a listed L4T release", BROKEN, "unknown L4T release: install JetPack 6.2")]
    rows = [Row("JetPack/L4T", f"{jetpack['jetpack']} (L4T {l4t})", "JetPack >= 6", OK if jetpack["supported"] else BROKEN,
                "" if jetpack["supported"] else "torch >= 2.8 has no wheels for JetPack 5: flash JetPack 6.2")]
    cuda = facts["versions"].get("cuda")
    if cuda and minor(cuda) != jetpack["cuda"]:
        rows.append(Row("CUDA (JetPack)", cuda, jetpack["cuda"], BROKEN, f"torch was built for CUDA {cuda}; JetPack has {jetpack['cuda']}"))
    return rows


def _other_rows(facts: dict, matrix: dict) -> list[Row]:
    rows = []
    for key in _OPTIONAL:
        found, spec = facts["versions"].get(key), matrix["optional"][key]
        status = MISSING if not found else (OK if version_tuple(found) >= version_tuple(spec["min"]) else WARN)
        rows.append(Row(key, found, f">= {spec['min']} (tested {spec['tested']})", status))
    fused = facts.get("fused_ops") or {}
    rows.append(Row("fused ops", "usable" if fused.get("usable") else "unusable", "usable", OK if fused.get("usable") else WARN,
                    "" if fused.get("usable") else str(fused.get("reason") or "")))
    for key, spec in matrix["cpp"].items():
        found = (facts.get("cpp") or {}).get(key)
        status = MISSING if not found else (OK if version_tuple(found) >= version_tuple(spec["min"]) else WARN)
        rows.append(Row(f"C++: {key}", found, f">= {spec['min']}", status, "" if status == OK else f"apt-get install {spec['apt']}"))
    return rows


def diagnose(facts: dict, matrix: dict | None = None) -> Diagnosis:
    """Check recorded or live ``facts`` against the matrix."""
    matrix = matrix or support_matrix()
    device, text = detect_device(facts)
    jetpack = matrix["jetpack"].get(minor(facts.get("l4t"))) if device == "jetson" else None
    result = Diagnosis(device, text)
    result.rows += _core_rows(facts, matrix, device)
    if any(row.component == "torch" and row.status == BROKEN for row in result.rows):
        result.rows += _other_rows(facts, matrix)
    else:
        result.rows += (_jetson_rows(facts, jetpack) if device == "jetson" else []) + _tensorrt_rows(facts, matrix, device, jetpack) + _other_rows(facts, matrix)
    fields = {"torch": matrix["torch"]["tested"], "torch_minor": minor(matrix["torch"]["tested"]),
              "onnxruntime": matrix["optional"]["onnxruntime"]["tested"], "l4t": facts.get("l4t") or "?",
              "cuda_major": (version_tuple(facts["versions"].get("cuda")) or (13,))[0],
              **{key: value for key, value in (jetpack or {"jetpack": "6.2", **matrix["jetpack"]["36.4"]}).items() if key != "supported"}}
    result.install = [line.format(**fields) for line in matrix["install"][device]]
    return result
