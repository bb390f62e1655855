"""Decoding an image file into the 8-bit RGB image the preprocessing expects: one rule, shared
with the C++ side (``resnet_edge::read_image``, csrc/lib/image_io.cpp; docs/cpp.md "Decoding").

Every Python loader goes through ``load_rgb``. The rule, for any mode Pillow opens:

* 8-bit RGB, L (grey: replicated), RGBA/RGBX, P (palette: the palette colour), LA, PA, 1:
  Pillow's ``convert("RGB")``. Alpha and palette transparency are dropped, never composited.
* 16 bits per sample (PNG grey ``I;16``, 16-bit RGB/RGBA/LA PNG, ``I;16`` TIFF) and 32-bit ``I``:
  a value v (clipped to 0..65535) is v/65535 of full scale, rounded: ``(v + 128) // 257``
  (32768 -> 128). Pillow's own ``convert("RGB")`` clips ``I;16`` to 255 and reads 16-bit colour
  PNGs by their high byte only, so those are decoded here.
* CMYK (JPEG; Pillow assumes Adobe's inverted polarity, as Photoshop writes it): OpenCV's
  conversion, ``R = (255 - K) - (C * (255 - K) >> 8)`` (likewise G from M, B from Y), no ICC.
* EXIF orientation is applied to JPEG and PNG files (both decoders read it there), after the
  conversion; other formats' EXIF is ignored.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..core.errors import UsageError

_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")

# A 16-bit colour PNG's rawmode -> (the mode and rawmode that read its other byte or, for LA,
# the whole grey sample in the high half of a 32-bit int).
_PNG16_LOW = {"RGB;16B": ("RGB", "RGB;16L"), "RGBA;16B": ("RGBA", "RGBA;16L"), "LA;16B": ("I", "I;32B")}


def scale16(values: np.ndarray) -> np.ndarray:
    """16-bit samples (any integer array) -> uint8, v/65535 of full scale rounded to nearest."""
    v = np.clip(values.astype(np.int64), 0, 65535)
    return ((v + 128) // 257).astype(np.uint8)


def cmyk_to_rgb(cmyk: np.ndarray) -> np.ndarray:
    """H x W x 4 CMYK (Pillow's polarity: 0 is no ink) -> H x W x 3 RGB, OpenCV's integer formula."""
    c = cmyk.astype(np.int32)
    nk = 255 - c[..., 3:4]
    return (nk - ((c[..., :3] * nk) >> 8)).astype(np.uint8)


def _png16_tile(image: Image.Image) -> tuple[str, str] | None:
    """The second decode a 16-bit colour PNG needs, or None."""
    if image.format != "PNG" or len(image.tile) != 1 or image.tile[0].codec_name != "zip":
        return None
    return _PNG16_LOW.get(image.tile[0].args) if isinstance(image.tile[0].args, str) else None


def _png16_samples(path: str, mode: str, rawmode: str, high: Image.Image) -> np.ndarray:
    """The 16-bit grey or RGB samples of a 16-bit colour PNG (Pillow keeps only the high byte):
    the file decoded again, reading the low bytes, by Pillow's own PNG decoder."""
    with Image.open(path) as again:
        again.tile = [again.tile[0]._replace(args=rawmode)]
        again._mode = mode
        again.load()
        if mode == "I":  # LA;16B read as one big-endian 32-bit int per pixel: grey << 16 | alpha
            return np.asarray(again, dtype=np.int32).view(np.uint32) >> 16
        low = np.asarray(again)[..., :3].astype(np.uint16)
    return (np.asarray(high)[..., :3].astype(np.uint16) << 8) | low


# EXIF orientation -> the transpose that displays the image upright (as ImageOps.exif_transpose).
_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_ORIENTED_FORMATS = ("JPEG", "MPO", "PNG")  # where OpenCV reads the orientation too


def _samples_rgb(image: Image.Image, path: str | None, png16: tuple[str, str] | None) -> Image.Image:
    if path is not None and png16 is not None:
        samples = _png16_samples(path, *png16, high=image)
        return Image.fromarray(scale16(samples), "L" if samples.ndim == 2 else "RGB").convert("RGB")
    if image.mode in _SIXTEEN_BIT_MODES:
        return Image.fromarray(scale16(np.asarray(image)), "L").convert("RGB")
    if image.mode == "CMYK":
        return Image.fromarray(cmyk_to_rgb(np.asarray(image)), "RGB")
    return image.convert("RGB")


def decode_rgb(image: Image.Image, path: str | None = None) -> Image.Image:
    """An opened (not yet loaded) image -> 8-bit RGB by the module's rule. ``path`` lets a
    16-bit colour PNG be read at full depth; without it, its high bytes are used."""
    png16 = _png16_tile(image)  # before getexif(), which may load the image and drop its tile
    orientation = image.getexif().get(0x0112) if image.format in _ORIENTED_FORMATS else None
    rgb = _samples_rgb(image, path, png16)
    transpose = _ORIENTATION.get(orientation) if isinstance(orientation, int) else None
    return rgb.transpose(transpose) if transpose is not None else rgb


def load_rgb(path: str) -> Image.Image:
    """Open an image file as 8-bit RGB (``decode_rgb``); a ``UsageError`` naming the file when it
    is unreadable."""
    try:
        with Image.open(path) as image:
            return decode_rgb(image, str(path))
    except Image.DecompressionBombError as error:
        raise UsageError(f"image {path} is too large to decode ({error}); resize or remove the file") from None
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError, EOFError) as error:
        raise UsageError(f"cannot read image {path} ({error}); remove or replace the file") from None
