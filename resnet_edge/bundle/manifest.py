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
from .containment import check_contained

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"
LABELS_NAME = "labels.txt"
MAX_MANIFEST_BYTES = 16 << 20  # a real one is a few KB (plus a copy of a calibration set's entries)

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
    names = [path.relative_to(directory).as_posix() for path in sorted(directory.rglob("*")) if path.is_file() and path.name != MANIFEST_NAME]
    # The readers' rule, applied before anything is written: a file that a reader would refuse (a
    # symlink out of the bundle, a name with ':' or '\\') is a bug in whatever put it there.
    check_contained(directory, directory / MANIFEST_NAME, names, error=RuntimeError)
    return {name: file_sha256(directory / name) for name in names}


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
    """The manifest of the bundle at ``path``, checked for shape, schema version and that every file it
    names stays inside the bundle (``containment``); no hashes."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise UsageError(f"bundle {path} does not exist; build one with resnet-edge compile --out {path}")
    manifest_path = path / MANIFEST_NAME
    if not manifest_path.is_file():
        raise UsageError(f"{path} is not a bundle (no {MANIFEST_NAME}); pass the directory resnet-edge compile wrote")
    size = manifest_path.stat().st_size
    if size > MAX_MANIFEST_BYTES:
        raise CheckFailed(f"{manifest_path} is {size / 1e6:.0f} MB, more than a manifest can be ({MAX_MANIFEST_BYTES >> 20} MiB); rebuild the bundle")
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
    _check_types(manifest_path, manifest)
    check_contained(path, manifest_path, manifest["files"])
    return manifest


_KEY_TYPES = {"files": dict, "artifacts": dict, "classes": list, "preprocessing": dict, "input": dict, "reference": dict}


def _check_types(manifest_path: Path, manifest: dict) -> None:
    """Refuse a manifest whose main fields have the wrong JSON type (a hand edit, a damaged copy)."""
    for key, kind in _KEY_TYPES.items():
        if not isinstance(manifest[key], kind):
            raise CheckFailed(f"{manifest_path}: {key!r} is not a JSON {'object' if kind is dict else 'array'}; rebuild the bundle")
    if not all(isinstance(name, str) and isinstance(digest, str) for name, digest in manifest["files"].items()):
        raise CheckFailed(f"{manifest_path}: 'files' must map names to sha256 strings; rebuild the bundle")
    for role, name in manifest["artifacts"].items():
        if not isinstance(name, str) or name not in manifest["files"]:  # an unlisted artifact would be loaded without a hash check
            raise CheckFailed(f"{manifest_path}: artifact {json.dumps(name, ensure_ascii=False)} ({role}) is not listed in files; rebuild the bundle")


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
        if wanted_gpu and not _gpu_fits(wanted_gpu, gpu):
            raise CheckFailed(
                f"bundle {path} was built for {_gpu_text(wanted_gpu)} and this host has {_gpu_text(gpu)}; "
                f"its {manifest.get('backend', 'compiled')} artifact only runs on the GPU it was built for: rebuild it here with resnet-edge compile"
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


def _gpu_fits(wanted: dict, gpu: dict) -> bool:
    """The same compute capability, or, for a hardware-compatible engine, any Ampere or newer GPU."""
    if wanted.get("hardware_compatible"):
        return tuple(int(part) for part in gpu["compute_capability"].split(".")) >= (8, 0)
    return wanted.get("compute_capability") == gpu["compute_capability"]


def _gpu_text(gpu: dict | None) -> str:
    if not gpu:
        return "an unknown GPU"
    return f"{gpu.get('name', 'GPU')} (compute capability {gpu.get('compute_capability', '?')})"
