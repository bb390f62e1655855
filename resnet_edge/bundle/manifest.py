"""``manifest.json``: writing it (with ``labels.txt`` and the file hashes), reading it, checking the
files against it and checking that this host can run what it describes."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from .. import ops
from ..core import hostinfo
from ..core.errors import CheckFailed, UsageError
from ..core.io import file_sha256, json_text

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"
LABELS_NAME = "labels.txt"

REQUIRED_KEYS = (
    "schema_version",
    "created",
    "arch",
    "num_classes",
    "classes",
    "preprocessing",
    "input",
    "output",
    "precision",
    "backend",
    "target",
    "artifacts",
    "files",
    "build_host",
    "reference",
)


# ----------------------------------------------------------------------------------------- writing


def _bundle_files(directory: Path) -> dict[str, str]:
    files = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file() and path.name != MANIFEST_NAME:
            files[path.relative_to(directory).as_posix()] = file_sha256(path)
    return files


def write_manifest(directory: Path, manifest: dict) -> dict:
    """Write ``labels.txt`` and ``manifest.json`` into ``directory``; fills ``schema_version``,
    ``created`` and ``files`` (sha256 of every other file). Returns the manifest as written."""
    directory = Path(directory)
    manifest = dict(manifest)
    manifest["schema_version"] = SCHEMA_VERSION
    manifest.setdefault("created", datetime.now(timezone.utc).isoformat(timespec="seconds"))
    classes = manifest.get("classes") or []
    if any("\n" in str(name) for name in classes):
        raise UsageError("class names cannot contain line breaks (labels.txt has one name per line)")
    (directory / LABELS_NAME).write_text("".join(f"{name}\n" for name in classes))
    manifest["files"] = _bundle_files(directory)
    missing = [role for role, name in manifest.get("artifacts", {}).items() if name not in manifest["files"]]
    if missing or "model" not in manifest.get("artifacts", {}):
        raise RuntimeError(f"bundle artifacts missing from {directory}: {missing or ['model']}")
    absent = [key for key in REQUIRED_KEYS if key not in manifest]
    if absent:
        raise RuntimeError(f"manifest lacks {absent}")
    ordered = {"schema_version": manifest.pop("schema_version"), "created": manifest.pop("created"), **manifest}
    text = json_text(ordered)
    # A plain write: the directory is still the private staging one, renamed into place as a whole.
    (directory / MANIFEST_NAME).write_text(text)
    return json.loads(text)


# ----------------------------------------------------------------------------------------- reading


def read_manifest(path: Path) -> dict:
    """The manifest of the bundle at ``path``, checked for shape and schema version only (no hashes)."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise UsageError(f"bundle {path} does not exist; build one with resnet-edge compile --out {path}")
    manifest_path = path / MANIFEST_NAME
    if not manifest_path.is_file():
        raise UsageError(f"{path} is not a bundle (no {MANIFEST_NAME}); pass the directory resnet-edge compile wrote")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckFailed(f"{manifest_path} is not valid JSON ({error}); rebuild the bundle") from None
    if not isinstance(manifest, dict):
        raise CheckFailed(f"{manifest_path} is not a manifest object; rebuild the bundle")
    version = manifest.get("schema_version")
    if not isinstance(version, int):
        raise CheckFailed(f"{manifest_path} has no integer schema_version; rebuild the bundle")
    if version > SCHEMA_VERSION:
        raise CheckFailed(
            f"bundle {path} uses manifest schema_version {version}, newer than this resnet-edge reads "
            f"({SCHEMA_VERSION}); upgrade resnet-edge"
        )
    absent = [key for key in REQUIRED_KEYS if key not in manifest]
    if absent:
        raise CheckFailed(f"{manifest_path} lacks {', '.join(absent)}; rebuild the bundle")
    return manifest


def verify_files(path: Path, manifest: dict) -> None:
    """Check every file the manifest lists against its sha256; a ``CheckFailed`` naming the first bad one."""
    path = Path(path)
    for name, digest in manifest["files"].items():
        file = path / name
        if not file.is_file():
            raise CheckFailed(f"bundle {path} is incomplete: {name} is missing; rebuild or re-copy it")
        if file_sha256(file) != digest:
            raise CheckFailed(f"bundle {path}: {name} does not match its sha256 in the manifest (corrupt or edited); rebuild or re-copy it")


# ------------------------------------------------------------------------------------- host checks


def check_host(path: Path, manifest: dict) -> None:
    """Refuse a bundle whose ``requires`` this host does not meet (GPU model, TensorRT version, ops)."""
    requires = manifest.get("requires") or {}
    built_on = manifest.get("build_host", {}).get("gpu") or {}
    wanted_gpu = requires.get("gpu")
    if requires.get("device") == "cuda" or wanted_gpu:
        gpu = hostinfo.gpu_info()
        if gpu is None:
            raise CheckFailed(f"bundle {path} needs a CUDA GPU ({_gpu_text(wanted_gpu or built_on)}) and this host has none")
        if wanted_gpu and wanted_gpu.get("compute_capability") != gpu["compute_capability"]:
            raise CheckFailed(
                f"bundle {path} was built for {_gpu_text(wanted_gpu)} and this host has {_gpu_text(gpu)}; "
                f"TensorRT engines only run on the GPU they were built for: rebuild it here with resnet-edge compile"
            )
    wanted_trt = requires.get("tensorrt")
    if wanted_trt:
        have = hostinfo.package_version("tensorrt")
        if have != wanted_trt:
            raise CheckFailed(
                f"bundle {path} was built with TensorRT {wanted_trt} and this host has "
                f"{'TensorRT ' + have if have else 'no TensorRT'}; rebuild it here with resnet-edge compile"
            )
    if requires.get("fused_ops"):
        usable, reason = ops.fused_ops_status()
        if not usable:
            raise CheckFailed(
                f"bundle {path} uses the resnet_edge fused ops, which cannot be loaded here ({reason}); "
                f"build the extension (pip install -e .) or rebuild the bundle with --no-fused"
            )


def _gpu_text(gpu: dict | None) -> str:
    if not gpu:
        return "an unknown GPU"
    return f"{gpu.get('name', 'GPU')} (compute capability {gpu.get('compute_capability', '?')})"
