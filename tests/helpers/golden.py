"""Golden sets for the C++ parity test: images plus the logits the Python pipeline gives them.

The Python pipeline is what ``validate`` and ``bench`` run: ``PIL.Image.open`` -> RGB ->
``bundle.transform()`` (the manifest's preprocessing) -> ``bundle.predict``. The C++ app
(``resnet-edge-infer --json --logits``) must reproduce the same logits within 1e-4 and the same
top-5 on these images. Images are mostly PNG (lossless, so both sides decode the same pixels) and
cover the cases where preprocessing implementations usually disagree: real downscaling (photo-like
content with fine texture), odd sizes (crop rounding), portrait and landscape, upscaling,
grayscale and RGBA files; and every decoding case of the shared rule (resnet_edge/data/images.py,
docs/cpp.md "Decoding"): 16-bit grey and RGB PNG, 16-bit grey + alpha PNG, an ``I;16`` TIFF, a
palette PNG with transparency, an 8-bit LA PNG, a CMYK JPEG and EXIF-rotated JPEG and PNG files.

    PYTHONPATH=tests python -m helpers.golden BUNDLE OUT_DIR   # OUT_DIR/*.png ... and golden.json
"""

from __future__ import annotations

import json
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from resnet_edge import bundle as bundle_mod
from resnet_edge.data.images import load_rgb
from resnet_edge.data.shapes import ShapesDataset

GOLDEN_NAME = "golden.json"
TOLERANCE = 1e-4

# (name, width, height, mode): the photo-like images every golden set gets.
PHOTO_SPECS = (
    ("photo_320x240", 320, 240, "RGB"),  # the common camera shape: real downscaling
    ("photo_240x320", 240, 320, "RGB"),  # portrait
    ("photo_333x251", 333, 251, "RGB"),  # odd sizes: crop anchors round half to even
    ("photo_640x480", 640, 480, "RGB"),
    ("photo_27x41", 27, 41, "RGB"),  # smaller than the crop: upscaling (and padding for big crops)
    ("gray_300x200", 300, 200, "L"),
    ("rgba_200x150", 200, 150, "RGBA"),
)

# (file name, width, height): the decoding cases, written by ``make_decode_images``.
DECODE_SPECS = (
    ("dec_gray16_200x150.png", 200, 150),  # 16-bit grey PNG (Pillow: I;16)
    ("dec_rgb16_160x120.png", 160, 120),  # 16-bit RGB PNG (Pillow reads only the high byte)
    ("dec_la16_120x90.png", 120, 90),  # 16-bit grey + alpha PNG
    ("dec_i16_150x110.tiff", 150, 110),  # I;16 TIFF
    ("dec_palette_180x130.png", 180, 130),  # P with a transparent palette entry
    ("dec_la_140x100.png", 140, 100),  # 8-bit grey + alpha
    ("dec_cmyk_170x120.jpg", 170, 120),  # CMYK JPEG (Adobe polarity, as Pillow and Photoshop write)
    ("dec_exif6_200x140.jpg", 200, 140),  # EXIF orientation 6 (rotate 90 clockwise to display)
    ("dec_exif8_130x90.png", 130, 90),  # EXIF orientation 8 in a PNG eXIf chunk
)


def photo_like(width: int, height: int, seed: int) -> Image.Image:
    """A deterministic RGB image with photo-like statistics: smooth colour gradients, a few hard
    edged objects and fine texture and noise (the high frequencies a resize must filter out)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    image = np.zeros((height, width, 3))
    for channel in range(3):
        for _ in range(3):  # low-frequency "lighting"
            fx, fy = rng.uniform(0.2, 2.0, 2) * 2 * np.pi
            phase = rng.uniform(0, 2 * np.pi)
            image[..., channel] += rng.uniform(20, 50) * np.sin(fx * x / width + fy * y / height + phase)
        image[..., channel] += rng.uniform(60, 190)
    for _ in range(6):  # objects with hard edges
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        rx, ry = rng.uniform(0.05, 0.3) * width, rng.uniform(0.05, 0.3) * height
        inside = ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 < 1 if rng.random() < 0.5 else (
            (abs(x - cx) < rx) & (abs(y - cy) < ry)
        )
        image[inside] = image[inside] * 0.3 + rng.uniform(0, 255, 3) * 0.7
    stripes = 25 * np.sin(2 * np.pi * (x * rng.uniform(0.2, 0.45) + y * rng.uniform(0.1, 0.4)))  # near Nyquist
    image += stripes[..., None] * (rng.random((1, 1, 3)) > 0.3)
    image += rng.normal(0, 10, image.shape)  # sensor noise
    return Image.fromarray(np.clip(np.rint(image), 0, 255).astype(np.uint8), "RGB")


def write_png16(path: Path, samples: np.ndarray) -> None:
    """A 16-bit PNG of ``samples`` (uint16, H x W grey, H x W x 2 grey + alpha, H x W x 3 RGB or
    H x W x 4 RGBA); Pillow cannot write 16-bit colour PNGs."""
    samples = np.asarray(samples, dtype=np.uint16)
    height, width = samples.shape[:2]
    channels = 1 if samples.ndim == 2 else samples.shape[2]
    color_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    rows = samples.astype(">u2").reshape(height, width * channels)
    raw = b"".join(b"\x00" + row.tobytes() for row in rows)  # filter type 0 per row

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 16, color_type, 0, 0, 0)
    Path(path).write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    )


def sixteen_bit(image: Image.Image, seed: int) -> np.ndarray:
    """An 8-bit image's samples widened to 16 bits with random low bytes: values whose high byte
    and v/65535 rounding disagree, so a decoder that truncates is caught."""
    high = np.asarray(image).astype(np.uint16)
    low = np.random.default_rng(seed).integers(0, 256, high.shape, dtype=np.uint16)
    return (high << 8) | low


def _exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def make_decode_images(out_dir: Path, seed: int = 0) -> list[Path]:
    """Write the ``DECODE_SPECS`` images into ``out_dir``; returns their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for number, (name, width, height) in enumerate(DECODE_SPECS):
        rgb = photo_like(width, height, seed * 1000 + 100 + number)
        alpha = Image.fromarray(np.random.default_rng(seed + 100 + number).integers(0, 256, (height, width), dtype=np.uint8))
        path = out_dir / name
        kind = name.split("_")[1]
        if kind == "gray16":
            write_png16(path, sixteen_bit(rgb.convert("L"), number))
        elif kind == "rgb16":
            write_png16(path, sixteen_bit(rgb, number))
        elif kind == "la16":
            write_png16(path, np.stack([sixteen_bit(rgb.convert("L"), number), sixteen_bit(alpha, number + 1)], -1))
        elif kind == "i16":
            Image.fromarray(sixteen_bit(rgb.convert("L"), number)).save(path)  # uint16 -> I;16
        elif kind == "palette":
            rgb.quantize(64, dither=Image.Dither.NONE).save(path, transparency=3)
        elif kind == "la":
            Image.merge("LA", (rgb.convert("L"), alpha)).save(path)
        elif kind == "cmyk":
            rgb.convert("CMYK").save(path, quality=95)
        elif kind == "exif6":
            rgb.save(path, quality=95, exif=_exif(6))
        elif kind == "exif8":
            rgb.save(path, exif=_exif(8))
        paths.append(path)
    return paths


def make_images(out_dir: Path, shapes: int = 6, seed: int = 0) -> list[Path]:
    """Write the golden images into ``out_dir``: ``shapes`` 32x32 images of the built-in shapes
    set (the demo model's input), the photo-like ``PHOTO_SPECS`` and the decoding cases
    (``DECODE_SPECS``). Returns their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    dataset = ShapesDataset(shapes, split="val", seed=seed)
    for index in range(shapes):
        path = out_dir / f"shapes_{index:02d}.png"
        dataset.image(index).save(path)
        paths.append(path)
    for number, (name, width, height, mode) in enumerate(PHOTO_SPECS):
        image = photo_like(width, height, seed * 1000 + number)
        if mode == "L":
            image = image.convert("L")
        elif mode == "RGBA":
            alpha = Image.fromarray(np.random.default_rng(seed + number).integers(0, 256, (height, width), dtype=np.uint8))
            image = image.convert("RGBA")
            image.putalpha(alpha)
        path = out_dir / f"{name}.png"
        image.save(path)
        paths.append(path)
    return paths + make_decode_images(out_dir, seed)


def make_frames(out_dir: Path, count: int = 8, width: int = 320, height: int = 240, seed: int = 7) -> list[Path]:
    """``count`` photo-like PNG frames of one size (the frames of the parity test's video)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        path = out_dir / f"frame_{index:04d}.png"
        photo_like(width, height, seed * 1000 + index).save(path)
        paths.append(path)
    return paths


def python_inputs(bundle, images: list[Path]) -> torch.Tensor:
    """The model inputs the Python pipeline makes of ``images``: N x 3 x crop x crop float32."""
    transform = bundle.transform()
    return torch.stack([transform(load_rgb(str(path))) for path in images])


def assert_app_matches_python(bundle_dir: Path, images: list[Path], frames: list[dict], saved: Path, tolerance: float,
                              label: str) -> None:
    """The app's ``--json --logits --save-input`` records ``frames`` of ``images`` against the Python
    pipeline: the same model input bytes, logits within ``tolerance``, the same top-5."""
    bundle = bundle_mod.load(bundle_dir, device="cpu")
    inputs = python_inputs(bundle, images)
    with torch.inference_mode():
        expected = bundle.predict(inputs).numpy()
    got = np.array([frame["logits"] for frame in frames], dtype=np.float64)
    worst = float(np.abs(got - expected).max())
    print(f"{label} C++ vs Python: largest logit difference {worst:.2e} over {len(images)} images")
    assert worst < tolerance
    assert [[p["index"] for p in frame["top_k"]] for frame in frames] == expected.argsort(1)[:, ::-1][:, :5].tolist()
    for i in range(len(images)):  # the model input is the same bytes
        assert np.array_equal(np.load(saved / f"frame_{i:06d}.npy"), inputs[i].numpy()), images[i].name


def golden(bundle_dir: Path, images: list[Path]) -> dict:
    """The golden record of ``images`` through the bundle at ``bundle_dir`` (Python pipeline)."""
    bundle = bundle_mod.load(bundle_dir, device="cpu")
    inputs = python_inputs(bundle, images)
    with torch.inference_mode():
        logits = bundle.predict(inputs)
    top5 = logits.topk(min(5, logits.shape[1]), dim=1).indices
    return {
        "bundle": str(Path(bundle_dir).absolute()),
        "arch": bundle.arch,
        "preprocessing": bundle.manifest["preprocessing"],
        "torch": torch.__version__,
        "images": [
            {
                "file": Path(path).name,
                "logits": [float(v) for v in logits[i]],
                "top5": [int(v) for v in top5[i]],
            }
            for i, path in enumerate(images)
        ],
    }


def write_golden(bundle_dir: Path, images: list[Path], path: Path) -> dict:
    """``golden`` written to ``path`` as JSON; returns it."""
    record = golden(bundle_dir, images)
    Path(path).write_text(json.dumps(record, indent=1) + "\n")
    return record


def compare(record: dict, results: dict[str, list[float]], tolerance: float = TOLERANCE) -> dict:
    """Compare other logits (file name -> logits) with a golden record.

    Returns ``{"max_abs_diff", "images", "top5_mismatches": [file...], "over_tolerance": [file...],
    "missing": [file...]}``; parity holds when the three lists are empty.
    """
    worst = 0.0
    top5_bad, over, missing = [], [], []
    for item in record["images"]:
        other = results.get(item["file"])
        if other is None:
            missing.append(item["file"])
            continue
        expected = torch.tensor(item["logits"], dtype=torch.float64)
        got = torch.tensor(other, dtype=torch.float64)
        diff = float((expected - got).abs().max())
        worst = max(worst, diff)
        if diff > tolerance:
            over.append(item["file"])
        if got.topk(len(item["top5"])).indices.tolist() != item["top5"]:
            top5_bad.append(item["file"])
    return {
        "max_abs_diff": worst,
        "images": len(record["images"]),
        "top5_mismatches": top5_bad,
        "over_tolerance": over,
        "missing": missing,
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] in ("-h", "--help"):
        print("usage: PYTHONPATH=tests python -m helpers.golden BUNDLE OUT_DIR", file=sys.stderr)
        return 2
    bundle_dir, out_dir = Path(argv[0]), Path(argv[1])
    images = make_images(out_dir)
    record = write_golden(bundle_dir, images, out_dir / GOLDEN_NAME)
    print(f"{len(record['images'])} images and their logits in {out_dir / GOLDEN_NAME}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
