"""``shapes``: a built-in, deterministic, procedurally drawn image-classification set.

Six classes of filled or outlined figures in random colours, sizes, positions and rotations on a
noisy background. Every image is a pure function of (seed, split, index), so the set needs no
download, costs no disk, and is identical on every machine: the demo and the tests run on it.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
from PIL import Image, ImageDraw
from torch.utils.data import Dataset

SHAPE_CLASSES = ("circle", "square", "triangle", "star", "cross", "ring")
IMAGE_SIZE = 32
_SPLIT_SALT = {"train": 0, "val": 1}
_SUPERSAMPLE = 4  # draw at 4x and downsample for anti-aliased edges


def _polygon(cx: float, cy: float, radius: float, vertices: int, rotation: float, inner: float = 1.0) -> list:
    """Vertices of a regular polygon (or a star when ``inner`` < 1) around (cx, cy)."""
    points = []
    count = vertices * (2 if inner < 1.0 else 1)
    for k in range(count):
        r = radius * (inner if k % 2 else 1.0) if inner < 1.0 else radius
        angle = rotation + 2 * math.pi * k / count
        points.append((cx + r * math.cos(angle), cy + r * math.sin(angle)))
    return points


def draw_shape(label: int, rng: np.random.Generator, size: int = IMAGE_SIZE) -> Image.Image:
    """Draw one image of class ``label`` with randomness taken from ``rng``."""
    big = size * _SUPERSAMPLE
    background = rng.integers(0, 256, 3)
    foreground = (background + rng.integers(80, 176, 3)) % 256  # keep contrast with the background
    image = Image.new("RGB", (big, big), tuple(int(c) for c in background))
    draw = ImageDraw.Draw(image)
    radius = rng.uniform(0.22, 0.4) * big
    cx, cy = (rng.uniform(radius, big - radius) for _ in range(2))
    rotation = rng.uniform(0, 2 * math.pi)
    fill = tuple(int(c) for c in foreground)
    name = SHAPE_CLASSES[label]
    if name == "circle":
        draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=fill)
    elif name == "ring":
        draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), outline=fill, width=int(radius * 0.3))
    elif name == "square":
        draw.polygon(_polygon(cx, cy, radius, 4, rotation), fill=fill)
    elif name == "triangle":
        draw.polygon(_polygon(cx, cy, radius, 3, rotation), fill=fill)
    elif name == "star":
        draw.polygon(_polygon(cx, cy, radius, 5, rotation, inner=0.4), fill=fill)
    else:  # cross: two rotated bars
        for turn in (0.0, math.pi / 2):
            angle = rotation + turn
            dx, dy = math.cos(angle) * radius, math.sin(angle) * radius
            draw.line((cx - dx, cy - dy, cx + dx, cy + dy), fill=fill, width=int(radius * 0.35))
    small = np.asarray(image.resize((size, size), Image.BILINEAR, reducing_gap=None), dtype=np.float32)
    noisy = small + rng.normal(0.0, 12.0, small.shape)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


class ShapesDataset(Dataset):
    """``num_samples`` images of ``split`` ("train" or "val"), balanced over ``SHAPE_CLASSES``.

    Items are ``(PIL.Image, label)``; ``transform`` is applied to the image when given.
    """

    classes = list(SHAPE_CLASSES)

    def __init__(self, num_samples: int, split: str = "train", seed: int = 0, transform=None) -> None:
        self.num_samples = num_samples
        self.split = split
        self.seed = seed
        self.transform = transform
        self.targets = [index % len(SHAPE_CLASSES) for index in range(num_samples)]

    def __len__(self) -> int:
        return self.num_samples

    def image(self, index: int) -> Image.Image:
        """The untransformed image at ``index``."""
        rng = np.random.default_rng((self.seed, _SPLIT_SALT[self.split], index))
        return draw_shape(self.targets[index], rng)

    def sample_id(self, index: int) -> str:
        """A stable name for the sample, used by calibration-set manifests."""
        return f"{self.split}/{index:06d}"

    def sample_sha256(self, index: int) -> str:
        """sha256 of the sample's raw RGB bytes (the set has no files to hash)."""
        return hashlib.sha256(self.image(index).tobytes()).hexdigest()

    def __getitem__(self, index: int):
        image = self.image(index)
        return (self.transform(image) if self.transform else image), self.targets[index]
