"""load_image decodes as MMDetection does (cv2 IMREAD_COLOR, then RGB) and explains failures."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from maskbench.data.images import load_image
from maskbench.utils.errors import ImageError


def _quadrants(height: int = 64, width: int = 96) -> np.ndarray:
    """An RGB image whose four quadrants have distinct colours, so any flip or turn shows."""
    image = np.zeros((height, width, 3), np.uint8)
    h, w = height // 2, width // 2
    image[:h, :w] = (230, 20, 20)  # red, top-left
    image[:h, w:] = (20, 230, 20)  # green, top-right
    image[h:, :w] = (20, 20, 230)  # blue, bottom-left
    image[h:, w:] = (230, 230, 20)  # yellow, bottom-right
    return image


def _write_jpeg(path: Path, rgb: np.ndarray, **save_args) -> Path:
    Image.fromarray(rgb).save(path, "JPEG", quality=95, **save_args)
    return path


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG declaring width x height in its header, with almost no pixel data behind it."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 100)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat)
                     + _png_chunk(b"IEND", b""))
    return path


def _mmdet_reference(path: Path) -> np.ndarray:
    """What mmcv.imfrombytes(flag='color', backend='cv2') + bgr_to_rgb gives."""
    bgr = cv2.imdecode(np.frombuffer(path.read_bytes(), np.uint8), cv2.IMREAD_COLOR)
    return bgr[..., ::-1]


def test_jpeg_is_rgb_uint8_and_matches_mmdetection_decode(tmp_path):
    rgb = _quadrants()
    path = _write_jpeg(tmp_path / "photo.jpg", rgb)
    image = load_image(str(path))  # str paths are accepted too
    assert image.shape == (64, 96, 3) and image.dtype == np.uint8
    assert image.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(image, _mmdet_reference(path))
    # RGB, not BGR: the top-left quadrant is red.
    assert tuple(int(v) for v in image[8, 8]) == pytest.approx((230, 20, 20), abs=12)


def test_png_is_lossless_rgb(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (17, 23, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "noise.png")
    np.testing.assert_array_equal(load_image(tmp_path / "noise.png"), rgb)


def test_exif_orientation_6_is_applied(tmp_path):
    stored = _quadrants(64, 96)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = _write_jpeg(tmp_path / "portrait.jpg", stored, exif=exif.tobytes())
    image = load_image(path)
    assert image.shape == (96, 64, 3)  # height and width swapped
    expected = np.rot90(stored, k=-1)  # clockwise
    # Compare block centres (JPEG blurs the colour edges): red must now be top-right.
    for y, x in [(16, 16), (16, 48), (80, 16), (80, 48)]:
        assert np.abs(image[y, x].astype(int) - expected[y, x]).max() <= 12, (y, x)
    assert tuple(int(v) for v in image[16, 48]) == pytest.approx((230, 20, 20), abs=12)


def test_grayscale_becomes_three_equal_channels(tmp_path):
    gray = np.arange(256, dtype=np.uint8).reshape(16, 16)
    Image.fromarray(gray, "L").save(tmp_path / "gray.png")
    image = load_image(tmp_path / "gray.png")
    assert image.shape == (16, 16, 3)
    for channel in range(3):
        np.testing.assert_array_equal(image[..., channel], gray)


def test_rgba_alpha_is_dropped_not_composited(tmp_path):
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., :3] = (200, 100, 50)
    rgba[..., 3] = 0  # fully transparent: compositing on white or black would change it
    Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha.png")
    path = tmp_path / "alpha.png"
    image = load_image(path)
    assert image.shape == (8, 8, 3)
    assert (image == (200, 100, 50)).all()
    np.testing.assert_array_equal(image, _mmdet_reference(path))


def test_16_bit_png_keeps_the_high_byte(tmp_path):
    values = np.array([[0, 255, 256, 383, 4095, 32768, 65280, 65535]], np.uint16)
    ok, encoded = cv2.imencode(".png", values)
    assert ok
    path = tmp_path / "deep.png"
    path.write_bytes(encoded.tobytes())
    image = load_image(path)
    assert image.dtype == np.uint8 and image.shape == (1, 8, 3)
    # Truncation (v >> 8), not rounding (v / 257): 383 -> 1, not 1.49 -> 1; 4095 -> 15.
    np.testing.assert_array_equal(image[0, :, 0], values[0] >> 8)
    assert image[0, 4, 0] == 15  # 12-bit data comes out nearly black (documented)


def test_16_bit_colour_png_keeps_channel_order(tmp_path):
    rgb16 = np.zeros((2, 2, 3), np.uint16)
    rgb16[..., 0], rgb16[..., 1], rgb16[..., 2] = 65535, 32768, 256
    ok, encoded = cv2.imencode(".png", rgb16[..., ::-1].copy())  # cv2 writes BGR
    assert ok
    (tmp_path / "deep_rgb.png").write_bytes(encoded.tobytes())
    assert tuple(load_image(tmp_path / "deep_rgb.png")[0, 0]) == (255, 128, 1)


def test_missing_file(tmp_path):
    with pytest.raises(ImageError, match=r"nope\.jpg: no such file; check the path"):
        load_image(tmp_path / "nope.jpg")


def test_folder_is_not_an_image(tmp_path):
    with pytest.raises(ImageError, match="is a folder"):
        load_image(tmp_path)


def test_empty_file(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(ImageError, match=r"empty\.jpg: empty file \(0 bytes\); copy or export"):
        load_image(tmp_path / "empty.jpg")


def test_truncated_jpeg(tmp_path):
    whole = _write_jpeg(tmp_path / "whole.jpg", np.random.default_rng(1).integers(0, 256, (120, 160, 3), np.uint8))
    data = whole.read_bytes()
    (tmp_path / "half.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match=r"half\.jpg: truncated or corrupt JPEG file .*; copy or export"):
        load_image(tmp_path / "half.jpg")


def test_text_file_named_jpg(tmp_path):
    (tmp_path / "notes.jpg").write_text("these are not pixels\n")
    with pytest.raises(ImageError, match=r"notes\.jpg: text, not an image; pass a JPEG, PNG"):
        load_image(tmp_path / "notes.jpg")


def test_binary_junk_named_png(tmp_path):
    (tmp_path / "junk.png").write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ImageError, match=r"junk\.png: not a recognised image format"):
        load_image(tmp_path / "junk.png")


def test_over_max_pixels_is_refused_before_decoding(tmp_path):
    path = _write_jpeg(tmp_path / "big.jpg", _quadrants(64, 96))
    with pytest.raises(ImageError, match=r"big\.jpg: image is 96x64 = 6,144 pixels, over the limit of 6,000; "
                                         r".*raise max_pixels to at least 6,144"):
        load_image(path, max_pixels=6_000)
    assert load_image(path, max_pixels=6_144).shape == (64, 96, 3)


def test_header_only_giant_png_is_refused_from_its_header(tmp_path):
    # ~100 bytes that declare 100000x100000 pixels: decoding would need 30 GB.
    path = _png_header_only(tmp_path / "bomb.png", 100_000, 100_000)
    with pytest.raises(ImageError, match=r"bomb\.png: image is .*10,000,000,000 pixels, over the limit of 100,000,000"):
        load_image(path)


def test_error_messages_are_one_line(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    data = _write_jpeg(tmp_path / "w.jpg", _quadrants()).read_bytes()
    (tmp_path / "half.jpg").write_bytes(data[: len(data) // 2])
    for name in ["empty.jpg", "half.jpg", "missing.jpg"]:
        with pytest.raises(ImageError) as caught:
            load_image(tmp_path / name)
        message = str(caught.value)
        assert "\n" not in message and message.startswith(str(tmp_path / name) + ": ") and ";" in message


def test_giant_header_allowed_by_a_larger_limit_still_fails_with_a_reason(tmp_path):
    # Past Pillow's own bomb limit (~179 M pixels) Pillow will not open it; OpenCV must say.
    path = _png_header_only(tmp_path / "wide.png", 20_000, 10_000)
    with pytest.raises(ImageError, match=r"wide\.png: OpenCV cannot decode this 200,000,000-pixel image"):
        load_image(path, max_pixels=300_000_000)


def test_format_pillow_reads_but_opencv_does_not_is_named(tmp_path):
    Image.fromarray(_quadrants()).save(tmp_path / "scan.pcx")  # PCX: Pillow yes, OpenCV no
    with pytest.raises(ImageError,
                       match=r"scan\.pcx: OpenCV cannot decode this PCX file .*; convert it to PNG or JPEG"):
        load_image(tmp_path / "scan.pcx")
