"""The ``--data SPEC`` every command accepts, parsed into one ``DataSource``.

Spec forms:
  ``DIR``           ImageFolder layout. ``DIR/train/<class>/*`` and ``DIR/val/<class>/*`` when those
                    splits exist; otherwise the whole directory serves every split.
  ``cifar10:DIR``   the CIFAR-10 python batches (train = data_batch_1..5, val = test_batch).
  ``shapes[:N]``    the built-in procedural set: N training images (default 2400) and N/4 for validation.

Datasets yield ``(PIL.Image or transformed tensor, label)`` and name each sample through
``sample_id(i)`` / ``sample_sha256(i)`` so calibration sets can be recorded reproducibly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch.utils.data import Dataset

from ..core.errors import UsageError
from .cifar import Cifar10Batches, find_batches_dir, read_class_names
from .folder import ImageDirectory
from .shapes import SHAPE_CLASSES, ShapesDataset

SPLITS = ("train", "val")
DEFAULT_SHAPES_SIZE = 2400


@dataclass(frozen=True)
class DataSource:
    """A parsed ``--data`` spec: what it is, its classes, and how to open each split."""

    spec: str
    kind: str  # "folder" | "cifar10" | "shapes"
    classes: tuple[str, ...]
    root: Path | None = None
    size: int = DEFAULT_SHAPES_SIZE  # shapes only
    has_splits: bool = True

    def split(self, name: str, transform=None) -> Dataset:
        """The ``train`` or ``val`` split, with ``transform`` applied to each image."""
        if name not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}")
        if self.kind == "shapes":
            count = self.size if name == "train" else max(self.size // 4, len(SHAPE_CLASSES))
            return ShapesDataset(count, split=name, transform=transform)
        if self.kind == "cifar10":
            return Cifar10Batches(self.root, split=name, transform=transform)
        directory = self.root / name if self.has_splits else self.root
        return ImageDirectory(directory, transform=transform)

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def _class_dirs(directory: Path) -> list[str]:
    return sorted(entry.name for entry in directory.iterdir() if entry.is_dir() and not entry.name.startswith("."))


def _open_folder(spec: str) -> DataSource:
    root = Path(spec).expanduser()
    if not root.exists():
        raise UsageError(f"data directory {root} does not exist; pass a folder, cifar10:DIR or shapes[:N]")
    if not root.is_dir():
        raise UsageError(f"--data {spec} is not a directory; pass a folder, cifar10:DIR or shapes[:N]")
    has_splits = (root / "train").is_dir() and (root / "val").is_dir()
    classes = _class_dirs(root / "val" if has_splits else root)
    if not classes:
        raise UsageError(f"data directory {root} is empty; it needs one sub-folder of images per class")
    if has_splits and _class_dirs(root / "train") != classes:
        raise UsageError(f"{root}/train and {root}/val have different class folders; they must match")
    return DataSource(spec, "folder", tuple(classes), root=root, has_splits=has_splits)


def open_data(spec: str) -> DataSource:
    """Parse a ``--data`` spec and check that it exists; a ``UsageError`` naming the problem otherwise."""
    if spec == "shapes" or spec.startswith("shapes:"):
        size_text = spec.partition(":")[2] or str(DEFAULT_SHAPES_SIZE)
        if not size_text.isdigit() or int(size_text) < len(SHAPE_CLASSES):
            raise UsageError(f"--data {spec}: N in shapes:N must be an integer >= {len(SHAPE_CLASSES)}")
        return DataSource(spec, "shapes", SHAPE_CLASSES, size=int(size_text))
    if spec.startswith("cifar10:"):
        root = Path(spec.partition(":")[2]).expanduser()
        if not root.is_dir():
            raise UsageError(f"CIFAR-10 directory {root} does not exist")
        return DataSource(spec, "cifar10", tuple(read_class_names(find_batches_dir(root))), root=root)
    return _open_folder(spec)
