"""Read an image file into the exact pixels MMDetection would feed its Mask R-CNN.

MMDetection loads with ``mmcv.imfrombytes(bytes, flag='color', backend='cv2')``, which is
``cv2.imdecode(buf, cv2.IMREAD_COLOR)``; its data preprocessor then swaps BGR to RGB. We do
the same two steps, so accuracy and masks match MMDetection pixel for pixel. What that decode
does (each checked in tests/data/test_images.py):

- EXIF orientation is applied (a portrait phone photo comes out upright, H and W swapped);
- grayscale becomes 3 equal channels;
- alpha is dropped, not composited: fully transparent pixels keep their stored colour;
- 16-bit images are cut to 8 bits by keeping the high byte (``v >> 8``, truncation, not
  rounding). Beware: 12-bit sensor data stored in 16-bit PNGs (values 0..4095) becomes
  0..15, an almost black image. Rescale such images to 8 bits yourself before predicting.

``cv2.imdecode`` returns ``None`` without saying why, so on failure we find out with Pillow
and raise an :class:`ImageError` that names the file, the problem and the fix. Pillow also
reads the header first, to refuse huge images before any pixel is decoded (a small file can
declare a gigapixel image: a decompression bomb).
"""

from __future__ import annotations

import codecs
import io
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from maskbench.utils.errors import ImageError

DEFAULT_MAX_PIXELS = 100_000_000


def load_image(path: Path | str, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode ``path`` as MMDetection does and return it as an HxWx3 uint8 RGB array.

    ``max_pixels`` caps width x height, checked from the header before decoding so that a
    forged or accidental giant image cannot exhaust memory. Every failure raises
    :class:`ImageError` with one line: ``"<path>: <what is wrong>; <fix>"``.
    """
    path = Path(path)
    data = _read_bytes(path)
    header = _read_header(path, data, max_pixels)
    bgr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ImageError(_why_undecodable(path, data, header))
    if header.pixels is None:  # a format only OpenCV knows: its size is known only now
        _check_pixels(path, bgr.shape[1], bgr.shape[0], max_pixels)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


@dataclass(frozen=True)
class _Header:
    """What Pillow learnt from the header: the lazily opened image (``None`` if Pillow
    cannot open it) and the declared pixel count (``None`` if the format is unknown to it)."""

    image: Image.Image | None
    pixels: int | None


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, or an ImageError saying why the file itself cannot be had."""
    if not path.exists():
        raise ImageError(f"{path}: no such file; check the path and the current directory")
    if path.is_dir():
        raise ImageError(f"{path}: is a folder, not an image; pass an image file or use find_images")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ImageError(f"{path}: cannot be read ({err.strerror or err}); check its permissions") from None
    if not data:
        raise ImageError(f"{path}: empty file (0 bytes); copy or export the image again")
    return data


def _read_header(path: Path, data: bytes, max_pixels: int) -> _Header:
    """Pillow's view of the header, after refusing images over ``max_pixels``."""
    try:
        with warnings.catch_warnings():
            # Pillow's own bomb warning duplicates our check (and fires below our limit).
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as err:
        # Past 2x its own limit Pillow will not open the file; its message has the count.
        found = re.search(r"\((\d+) pixels\)", str(err))
        pixels = int(found.group(1)) if found else None
        if pixels is None or pixels > max_pixels:
            raise ImageError(_too_big_message(path, pixels, None, max_pixels)) from None
        return _Header(image=None, pixels=pixels)  # allowed by a larger max_pixels
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        # Unknown to Pillow; OpenCV may still decode it (then the size is checked after).
        return _Header(image=None, pixels=None)
    _check_pixels(path, image.width, image.height, max_pixels)
    return _Header(image=image, pixels=image.width * image.height)


def _check_pixels(path: Path, width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise ImageError(_too_big_message(path, width * height, (width, height), max_pixels))


def _too_big_message(path: Path, pixels: int | None, size: tuple[int, int] | None, max_pixels: int) -> str:
    what = f"{size[0]}x{size[1]} = {pixels:,} pixels" if size else f"{pixels:,} pixels" if pixels else "too large"
    need = f"at least {pixels:,}" if pixels else "a larger value"
    return (
        f"{path}: image is {what}, over the limit of {max_pixels:,}; if the file is trusted, "
        f"raise max_pixels to {need}"
    )


def _why_undecodable(path: Path, data: bytes, header: _Header) -> str:
    """The one-line reason OpenCV could not decode ``data``, found with Pillow."""
    if header.image is None and header.pixels is not None:
        return (
            f"{path}: OpenCV cannot decode this {header.pixels:,}-pixel image (corrupt, or past "
            "OpenCV's 2^30-pixel limit); check the file or cut it into smaller images"
        )
    if header.image is None:
        kind = "text, not an image" if _looks_like_text(data) else "not a recognised image format"
        return f"{path}: {kind}; pass a JPEG, PNG, BMP, TIFF or WebP image file"
    fmt = header.image.format or "image"
    try:
        header.image.load()  # full decode: reports truncation and corrupt data
    except Exception as err:  # Pillow raises OSError, SyntaxError, ValueError... for bad data
        return f"{path}: truncated or corrupt {fmt} file ({err}); copy or export the image again"
    return f"{path}: OpenCV cannot decode this {fmt} file (mode {header.image.mode}); convert it to PNG or JPEG"


def _looks_like_text(data: bytes) -> bool:
    head = data[:512]
    try:  # incremental: a character cut at byte 512 is not a reason to say "binary"
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return b"\x00" not in head
