"""``cifar10:DIR``: the CIFAR-10 python batches (``data_batch_1..5``, ``test_batch``, ``batches.meta``).

torchvision's ``CIFAR10`` insists on its own sub-directory name and the official files' md5 sums;
this reader takes the batches from any directory (or its ``cifar-10-batches-py`` child) and checks
only that they are complete and readable.
"""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from ..core.errors import UsageError

TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
META_FILE = "batches.meta"


def find_batches_dir(root: Path) -> Path:
    """``root`` or its ``cifar-10-batches-py`` child, whichever holds ``batches.meta``."""
    for candidate in (root, root / "cifar-10-batches-py"):
        if (candidate / META_FILE).is_file():
            return candidate
    raise UsageError(f"{root} holds no CIFAR-10 python batches ({META_FILE} not found); extract cifar-10-python.tar.gz there")


def _unpickle(path: Path) -> dict:
    if not path.is_file():
        raise UsageError(f"CIFAR-10 batch {path} is missing; the directory needs {', '.join(TRAIN_BATCHES)}, {TEST_BATCH}")
    try:
        with path.open("rb") as handle:
            return pickle.load(handle, encoding="bytes")
    except Exception as error:  # pickle raises many types for a damaged file
        raise UsageError(f"cannot read CIFAR-10 batch {path}: {error}") from None


def read_class_names(batches_dir: Path) -> list[str]:
    """Class names from ``batches.meta``."""
    meta = _unpickle(batches_dir / META_FILE)
    return [name.decode() if isinstance(name, bytes) else name for name in meta[b"label_names"]]


class Cifar10Batches(Dataset):
    """One split of CIFAR-10 from its python batches; items are ``(PIL.Image, label)``."""

    def __init__(self, root: Path, split: str = "train", transform=None) -> None:
        self.batches_dir = find_batches_dir(Path(root))
        self.split = split
        self.transform = transform
        self.classes = read_class_names(self.batches_dir)
        names = TRAIN_BATCHES if split == "train" else (TEST_BATCH,)
        images, labels = [], []
        for name in names:
            batch = _unpickle(self.batches_dir / name)
            images.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            labels.extend(int(label) for label in batch[b"labels"])
        self.data = np.concatenate(images).transpose(0, 2, 3, 1)  # NHWC for PIL
        self.targets = labels

    def __len__(self) -> int:
        return len(self.targets)

    def sample_id(self, index: int) -> str:
        """A stable name for the sample, used by calibration-set manifests."""
        return f"{self.split}/{index:06d}"

    def sample_sha256(self, index: int) -> str:
        """sha256 of the sample's raw RGB bytes."""
        return hashlib.sha256(self.data[index].tobytes()).hexdigest()

    def __getitem__(self, index: int):
        image = Image.fromarray(self.data[index])
        return (self.transform(image) if self.transform else image), self.targets[index]
