"""Calibration sets: a reproducible, verifiable list of the images INT8 calibration sees.

A set is a JSON manifest (``calibration/NAME.json``, format in ``calibration/README.md``): the data
spec and split it was drawn from, each image's path relative to the split's root with its sha256,
the seed and selection rule, class coverage and the preprocessing it is meant for. ``compile``
accepts one (``--calib-set``) or draws one on the fly from ``--calib-data``; either way the bundle
records the set's hash (sha256 of its canonical JSON) and carries a copy of it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset, Subset

from ..core.errors import CheckFailed, UsageError
from ..core.io import read_json_document, write_atomic
from ..data import get_preset, open_data
from ..data.presets import Preprocessing
from ..data.source import DataSource

CALIBSET_FORMAT = "resnet-edge-calibset"
CALIBSET_VERSION = 1
SPLITS = ("train", "val")
log = logging.getLogger(__name__)
MAX_CALIBSET_BYTES = 16 << 20  # ~100k images; a set is a few hundred to a few thousand


def canonical_json(obj) -> str:
    """The form a set is hashed in: sorted keys, no whitespace, UTF-8."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def set_hash(manifest: dict) -> str:
    """sha256 of a calibration-set manifest's canonical JSON."""
    return hashlib.sha256(canonical_json(manifest).encode()).hexdigest()


def default_preset(source: DataSource) -> str:
    """CIFAR statistics for 32-pixel sets (shapes, cifar10), ImageNet's for image folders."""
    return "cifar" if source.kind in ("shapes", "cifar10") else "imagenet"


def _targets(dataset) -> list[int]:
    targets = getattr(dataset, "targets", None)
    if targets is None:
        raise UsageError("this data source does not list its labels; calibration sets need targets")
    return [int(t) for t in targets]


def _split_root(source: DataSource, split: str) -> str | None:
    if source.kind != "folder":
        return None
    root = source.root / split if source.has_splits else source.root
    return str(root.expanduser().absolute())


@dataclass
class CalibSet:
    """A loaded calibration-set manifest (``manifest``) and, when known, the file it came from."""

    manifest: dict
    path: Path | None = None

    @property
    def hash(self) -> str:
        return set_hash(self.manifest)

    @property
    def images(self) -> list[dict]:
        return self.manifest["images"]

    @property
    def classes(self) -> list[str]:
        return list(self.manifest["classes"])

    @property
    def missing_classes(self) -> list[str]:
        return list(self.manifest.get("missing_classes", []))

    @property
    def data(self) -> str:
        return self.manifest["data"]

    @property
    def split(self) -> str:
        return self.manifest["split"]

    @property
    def preprocessing(self) -> Preprocessing:
        return Preprocessing.from_dict(self.manifest["preprocessing"])

    def __len__(self) -> int:
        return len(self.images)

    def summary(self) -> str:
        covered = len(self.classes) - len(self.missing_classes)
        return f"{len(self)} images from {self.data} ({self.split}), {covered}/{len(self.classes)} classes, sha256 {self.hash[:12]}"

    def open(self, transform=None, limit: int | None = None, verify: bool = True) -> Dataset:
        """The set's images (the first ``limit``) as a dataset of ``(tensor, label)``, each checked
        against its sha256 when ``verify``. A ``UsageError`` when the data is not here, a
        ``CheckFailed`` when an image changed since the set was made."""
        source = _open_source(self.data, self.manifest)
        dataset = source.split(self.split, transform=transform)
        wanted = self.images[:limit] if limit else self.images
        index_of = {dataset.sample_id(i): i for i in range(len(dataset))}
        indices = []
        for entry in wanted:
            index = index_of.get(entry["path"])
            if index is None:
                raise UsageError(
                    f"calibration image {entry['path']} of {self.path or 'the set'} is not in {self.data} ({self.split}); "
                    f"re-create the set with resnet-edge calibset"
                )
            if verify and dataset.sample_sha256(index) != entry["sha256"]:
                raise CheckFailed(
                    f"calibration image {entry['path']} changed since the set was made (sha256 differs); "
                    f"re-create the set with resnet-edge calibset"
                )
            indices.append(index)
        return Subset(dataset, indices)


def _open_source(spec: str, manifest: dict) -> DataSource:
    try:
        return open_data(spec)
    except UsageError as error:
        raise UsageError(f"the calibration set's data {spec!r} cannot be opened here ({error}); re-create the set or restore the data") from None


def make_calibset(
    data: str,
    per_class: int | None = None,
    count: int | None = None,
    seed: int = 0,
    split: str = "train",
    preset: str | None = None,
) -> CalibSet:
    """Draw a calibration set: ``per_class`` images of every class, or ``count`` images overall.

    Images are listed in a seeded random order, so any prefix (``--calib-images N``) is itself a random,
    roughly class-balanced subset. The same arguments always give the same manifest.
    """
    if (per_class is None) == (count is None):
        raise UsageError("pass exactly one of --per-class K or --count N")
    if (per_class is not None and per_class < 1) or (count is not None and count < 1):
        raise UsageError("--per-class and --count must be at least 1")
    if split not in SPLITS:
        raise UsageError(f"--split must be one of {', '.join(SPLITS)}")
    source = open_data(data)
    dataset = source.split(split)
    targets = _targets(dataset)
    if not targets:
        raise UsageError(f"{data} ({split}) has no images to calibrate on")
    rng = np.random.default_rng(seed)
    if per_class is not None:
        chosen = []
        for label in range(len(source.classes)):
            members = [i for i, t in enumerate(targets) if t == label]
            if members:
                chosen.extend(rng.choice(members, size=min(per_class, len(members)), replace=False).tolist())
    else:
        chosen = rng.choice(len(targets), size=min(count, len(targets)), replace=False).tolist()
    order = rng.permutation(len(chosen))
    chosen = [int(chosen[i]) for i in order]
    classes = list(source.classes)
    counts = {name: 0 for name in classes}
    images = []
    log.debug(f"hashing {len(chosen)} images of {data} ({split})")
    for index in chosen:
        label = targets[index]
        counts[classes[label]] += 1
        images.append({"path": dataset.sample_id(index), "label": label, "class": classes[label], "sha256": dataset.sample_sha256(index)})
    manifest = {
        "format": CALIBSET_FORMAT,
        "version": CALIBSET_VERSION,
        "data": data if source.kind != "folder" else str(Path(data).expanduser().absolute()),
        "kind": source.kind,
        "split": split,
        "root": _split_root(source, split),
        "selection": {"per_class": per_class, "count": count, "seed": seed},
        "preprocessing": get_preset(preset or default_preset(source)).to_dict(),
        "classes": classes,
        "class_counts": counts,
        "missing_classes": [name for name, n in counts.items() if n == 0],
        "num_images": len(images),
        "images": images,
    }
    return CalibSet(manifest)


def write_calibset(calibset: CalibSet, out: Path, force: bool = False) -> Path:
    """Write the manifest to ``out`` atomically (temp file + rename); refuse to overwrite without ``force``.

    The file gets ordinary (umask) permissions: a set is meant to be shared.
    """
    out = Path(out).expanduser()
    if out.exists() and not force:
        raise UsageError(f"{out} already exists; pass --force to replace it or choose another --out")
    if out.suffix != ".json":
        raise UsageError(f"--out {out}: a calibration set is a .json file")
    write_atomic(out, _pretty(calibset.manifest))
    calibset.path = out
    return out


def _pretty(manifest: dict) -> str:
    """Indented JSON with one image per line (the hash is of the canonical form, not of this text)."""
    head = {key: value for key, value in manifest.items() if key != "images"}
    lines = json.dumps(head, indent=1, ensure_ascii=False)[:-2]
    images = ",\n".join("  " + json.dumps(entry, ensure_ascii=False) for entry in manifest.get("images", []))
    return f'{lines},\n "images": [\n{images}\n ]\n}}\n'


def _damage(manifest: dict) -> str | None:
    """What is wrong with a set's fields' types, or None."""
    if not isinstance(manifest["data"], str) or manifest["split"] not in SPLITS:
        return "bad data or split"
    if not isinstance(manifest["classes"], list) or not all(isinstance(name, str) for name in manifest["classes"]):
        return "bad classes"
    try:
        Preprocessing.from_dict(manifest["preprocessing"])
    except (KeyError, TypeError, ValueError):
        return "bad preprocessing"
    images = manifest["images"]
    if not isinstance(images, list) or any(
        not isinstance(entry, dict) or not isinstance(entry.get("path"), str) or not isinstance(entry.get("sha256"), str)
        for entry in images
    ):
        return "bad image entries: each needs a path and a sha256"
    return None


def load_calibset(path: Path) -> CalibSet:
    """Read and check a calibration-set manifest; a ``UsageError`` saying what is wrong otherwise."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UsageError(f"calibration set {path} does not exist; make one with resnet-edge calibset --out {path}")
    size = path.stat().st_size
    if size > MAX_CALIBSET_BYTES:
        raise UsageError(f"calibration set {path} is {size / 1e6:.0f} MB, more than a set can be ({MAX_CALIBSET_BYTES >> 20} MiB); re-create it with resnet-edge calibset")
    manifest = read_json_document(path, lambda error: f"calibration set {path} is unreadable ({type(error).__name__}: {error}); "
                                                      f"re-create it with resnet-edge calibset")
    if not isinstance(manifest, dict) or manifest.get("format") != CALIBSET_FORMAT:
        raise UsageError(f"{path} is not a resnet-edge calibration set (no \"format\": \"{CALIBSET_FORMAT}\"); make one with resnet-edge calibset")
    if not isinstance(manifest.get("version"), int) or manifest["version"] > CALIBSET_VERSION:
        raise UsageError(f"calibration set {path} has version {manifest.get('version')!r}; this resnet-edge reads up to {CALIBSET_VERSION}")
    required = ("data", "split", "classes", "images", "preprocessing")
    absent = [key for key in required if key not in manifest]
    problem = "lacks " + ", ".join(absent) if absent else _damage(manifest)
    if problem:
        raise UsageError(f"calibration set {path} is damaged ({problem}); re-create it")
    if not manifest["images"]:
        raise UsageError(f"calibration set {path} lists no images; re-create it with a larger --per-class or --count")
    return CalibSet(manifest, path)
