"""Image directories in ImageFolder layout, with clear errors for empty folders and corrupt images."""

from __future__ import annotations

import hashlib
from pathlib import Path

from torchvision.datasets import ImageFolder

from ..core.errors import UsageError
from .images import load_rgb  # the one decoding rule (images.py); imported from here too

__all__ = ["ImageDirectory", "load_rgb"]


class ImageDirectory(ImageFolder):
    """``torchvision.datasets.ImageFolder`` that names its samples and refuses empty folders."""

    def __init__(self, root: Path, transform=None) -> None:
        root = Path(root)
        if not root.is_dir():
            raise UsageError(f"data directory {root} does not exist")
        try:
            super().__init__(str(root), transform=transform, loader=load_rgb)
        except (FileNotFoundError, OSError) as error:
            raise UsageError(f"data directory {root} has no images in class sub-folders ({error})") from None
        self.root_path = root

    def sample_id(self, index: int) -> str:
        """The sample's path relative to the directory, used by calibration-set manifests."""
        return Path(self.samples[index][0]).relative_to(self.root_path).as_posix()

    def sample_sha256(self, index: int) -> str:
        """sha256 of the image file's bytes."""
        return hashlib.sha256(Path(self.samples[index][0]).read_bytes()).hexdigest()
