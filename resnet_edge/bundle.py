"""The deployment bundle: a directory with the compiled artifact(s), ``labels.txt`` and ``manifest.json``.

Writing (used by ``compile``)::

    with bundle.staging(out, force=False) as tmp:   # a private directory beside ``out``
        ... write artifacts into tmp ...
        bundle.write_manifest(tmp, manifest)          # labels.txt, file hashes, manifest.json
    # leaving the block renames tmp to ``out``; any exception (KeyboardInterrupt too) deletes tmp

Reading (validate, bench, demo, tests)::

    b = bundle.load("build/r50-int8")       # checks schema version, file hashes, GPU / TensorRT match
    logits = b.predict(batch)               # NCHW float32 -> float32 logits on the CPU, any batch size
    b.classes, b.preprocessing, b.transform(), b.manifest, b.reference_weights

The schema is documented in ``docs/bundle-manifest.md``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import torch

from .checkpoint import file_sha256
from .data.presets import Preprocessing, eval_transform
from .core.errors import CheckFailed, UsageError

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


def check_out_dir(out: Path, force: bool) -> Path:
    """Refuse an existing ``out`` without ``force``, and anything but a bundle (or empty dir) even with it."""
    out = Path(out).expanduser().absolute()
    if out.exists() or out.is_symlink():
        if not force:
            raise UsageError(f"{out} already exists; pass --force to replace it or choose another --out")
        if not out.is_dir() or (any(out.iterdir()) and not (out / MANIFEST_NAME).is_file()):
            raise UsageError(f"{out} exists and is not a bundle; refusing to replace it even with --force")
    return out


def _make_parents(directory: Path) -> list[Path]:
    """mkdir -p, returning the directories it created (deepest last) so a failure can remove them."""
    created = []
    for parent in reversed([directory, *directory.parents]):
        if not parent.exists():
            parent.mkdir()
            created.append(parent)
    return created


@contextlib.contextmanager
def staging(out: Path, force: bool = False) -> Iterator[Path]:
    """Yield a fresh directory beside ``out``; rename it to ``out`` when the block ends normally.

    On any exception, KeyboardInterrupt included, the directory and any parents this call created are
    removed, and a bundle being replaced with ``force`` is left untouched.
    """
    out = check_out_dir(out, force)
    created = _make_parents(out.parent)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".partial"))
    try:
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private; a bundle is an ordinary directory
        yield tmp
        if not (tmp / MANIFEST_NAME).is_file():
            raise RuntimeError("bundle.staging: the block ended without write_manifest()")
        _move_into_place(tmp, out, force)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for directory in reversed(created):
            with contextlib.suppress(OSError):
                directory.rmdir()
        raise


def _move_into_place(tmp: Path, out: Path, force: bool) -> None:
    check_out_dir(out, force)  # again: something may have appeared while we were building
    if not out.exists():
        os.rename(tmp, out)
        return
    old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".old"))
    old.rmdir()
    os.rename(out, old)
    try:
        os.rename(tmp, out)
    except BaseException:
        os.rename(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)


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
    text = json.dumps(ordered, indent=2, sort_keys=False, default=_json_default) + "\n"
    (directory / MANIFEST_NAME).write_text(text)
    return json.loads(text)


def _json_default(value):
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):  # numpy / torch scalars
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in manifest.json")


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


def check_host(path: Path, manifest: dict) -> None:
    """Refuse a bundle whose ``requires`` this host does not meet (GPU model, TensorRT version, ops)."""
    from .core import hostinfo

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
        try:
            import resnet_edge.ops  # noqa: F401  (registers torch.ops.resnet_edge.*)
        except Exception as error:
            raise CheckFailed(
                f"bundle {path} uses the resnet_edge fused ops, which cannot be loaded here ({error}); "
                f"build the extension (pip install -e .) or rebuild the bundle with --no-fused"
            ) from None


def _gpu_text(gpu: dict | None) -> str:
    if not gpu:
        return "an unknown GPU"
    return f"{gpu.get('name', 'GPU')} (compute capability {gpu.get('compute_capability', '?')})"


class Bundle:
    """A loaded, verified bundle. ``predict`` runs it; everything else reads the manifest."""

    def __init__(self, path: Path, manifest: dict, backend, predictor) -> None:
        self.path = Path(path)
        self.manifest = manifest
        self.backend = backend
        self._predictor = predictor

    # --- what the manifest says
    @property
    def arch(self) -> str:
        return self.manifest["arch"]

    @property
    def classes(self) -> list[str]:
        return list(self.manifest["classes"])

    @property
    def num_classes(self) -> int:
        return int(self.manifest["num_classes"])

    @property
    def preprocessing(self) -> Preprocessing:
        data = {k: v for k, v in self.manifest["preprocessing"].items() if k in Preprocessing.__dataclass_fields__}
        return Preprocessing.from_dict(data)

    def transform(self):
        """PIL image -> normalised CHW float tensor, exactly as the model expects."""
        return eval_transform(self.preprocessing)

    @property
    def precision(self) -> str:
        return self.manifest["precision"]

    @property
    def target(self) -> str:
        return self.manifest["target"]

    @property
    def batch(self):
        from .backends import BatchSpec

        return BatchSpec.from_dict(self.manifest["input"]["batch"])

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(self.manifest["input"]["shape"][1:])

    @property
    def reference(self) -> dict:
        return dict(self.manifest["reference"])

    @property
    def reference_weights(self) -> Path | None:
        """The FP32 reference weights file as recorded (None for random weights); may not exist here."""
        weights = self.manifest["reference"].get("weights")
        return Path(weights).expanduser() if weights else None

    @property
    def calibration(self) -> dict | None:
        return self.manifest.get("calibration")

    @property
    def quantization(self) -> dict | None:
        return self.manifest.get("quantization")

    def artifact(self, role: str = "model") -> Path:
        """Path of the artifact with ``role`` (``model``, ``calibration_cache``...)."""
        try:
            return self.path / self.manifest["artifacts"][role]
        except KeyError:
            raise UsageError(f"bundle {self.path} has no {role!r} artifact; it has: {', '.join(self.manifest['artifacts'])}") from None

    def load_reference_model(self):
        """The FP32 reference model, after checking the weights file against the recorded sha256."""
        from .checkpoint import load_weights

        ref = self.manifest["reference"]
        if ref.get("random_weights") or not ref.get("weights"):
            raise UsageError(f"bundle {self.path} was built from random weights (speed measurements only); it has no FP32 reference")
        path = self.reference_weights
        if not path.is_file():
            raise UsageError(f"the bundle's FP32 reference {path} is not on this host; copy it there or pass the weights")
        if ref.get("sha256") and file_sha256(path) != ref["sha256"]:
            raise CheckFailed(f"{path} is not the file the bundle was built from (sha256 differs)")
        return load_weights(path, self.arch, num_classes=self.num_classes).model

    # --- running it
    def predict(self, batch: torch.Tensor) -> torch.Tensor:
        """NCHW float32 batch of any size -> float32 logits ``[N, num_classes]`` on the CPU.

        Batches are split to at most ``batch.max`` and padded up to ``batch.min`` for the artifact.
        """
        if batch.dim() == 3:
            batch = batch.unsqueeze(0)
        if batch.dim() != 4 or tuple(batch.shape[1:]) != self.input_shape:
            raise UsageError(f"bundle {self.path} takes N x {' x '.join(map(str, self.input_shape))} batches, got {tuple(batch.shape)}")
        batch = batch.float().contiguous()
        spec = self.batch
        outputs = []
        for start in range(0, batch.shape[0], spec.max):
            chunk = batch[start : start + spec.max]
            count = chunk.shape[0]
            if count < spec.min:
                chunk = torch.cat([chunk, chunk[-1:].expand(spec.min - count, *chunk.shape[1:])])
            outputs.append(self._predictor(chunk)[:count].float().cpu())
        if not outputs:
            return torch.empty(0, self.num_classes)
        return torch.cat(outputs)

    __call__ = predict

    def simulator(self):
        """INT8 only: a CPU predictor fake-quantizing with the artifact's exact scales, or None."""
        return self.backend.simulator(self.path, self.manifest)

    def __repr__(self) -> str:
        return f"Bundle({str(self.path)!r}, {self.arch}, {self.backend.name}, {self.precision}, {self.target})"


def load(path: Path, device: str = "auto", verify: bool = True) -> Bundle:
    """Open the bundle at ``path``: check its schema version, file hashes and that this host can run it.

    ``device``: ``auto`` (the backend's choice for this host and bundle), ``cpu`` or ``cuda``.
    """
    from .backends import get_backend

    path = Path(path).expanduser()
    manifest = read_manifest(path)
    if verify:
        verify_files(path, manifest)
    check_host(path, manifest)
    try:
        backend = get_backend(manifest["backend"])
    except UsageError as error:
        raise CheckFailed(f"bundle {path} needs the {manifest['backend']} backend: {error}") from None
    ok, reason = backend.available()
    if not ok:
        raise CheckFailed(f"bundle {path} needs the {backend.name} backend, which is not usable here: {reason}")
    predictor = backend.load(path, manifest, device)
    return Bundle(path, manifest, backend, predictor)
