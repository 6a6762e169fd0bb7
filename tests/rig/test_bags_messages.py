"""ROS image messages to RGB, field by field: every readable raw encoding, padded rows, short
buffers, and the header stamp read straight from the serialized bytes."""

from __future__ import annotations

import struct
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from maskbench.rig.camera_streams import FrameDecodeError, SourceError
from maskbench.rig.image_messages import check_compressed_format, compressed_to_rgb, header_stamp_ns, raw_to_rgb

RGB = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) * 7


def raw_message(encoding: str, pixels: np.ndarray, padding: int = 0) -> SimpleNamespace:
    """A sensor_msgs/Image with ``padding`` bytes after each row (as some drivers align rows)."""
    height, width = pixels.shape[:2]
    rows = pixels.reshape(height, -1)
    padded = np.concatenate([rows, np.full((height, padding), 255, np.uint8)], axis=1)
    return SimpleNamespace(encoding=encoding, height=height, width=width, step=padded.shape[1], data=padded.reshape(-1))


@pytest.mark.parametrize(
    ("encoding", "stored"),
    [
        ("rgb8", RGB),
        ("bgr8", RGB[:, :, ::-1]),
        ("rgba8", np.concatenate([RGB, np.full((2, 3, 1), 9, np.uint8)], axis=2)),
        ("bgra8", np.concatenate([RGB[:, :, ::-1], np.full((2, 3, 1), 9, np.uint8)], axis=2)),
    ],
)
@pytest.mark.parametrize("padding", [0, 5])
def test_raw_colour_encodings_come_out_rgb(encoding, stored, padding):
    np.testing.assert_array_equal(raw_to_rgb(raw_message(encoding, np.ascontiguousarray(stored), padding), "t"), RGB)


def test_mono8_becomes_three_equal_channels():
    grey = RGB[:, :, :1]
    decoded = raw_to_rgb(raw_message("mono8", np.ascontiguousarray(grey), padding=3), "t")
    np.testing.assert_array_equal(decoded, np.repeat(grey, 3, axis=2))


def test_short_buffer_and_changed_encoding_are_frame_errors():
    message = raw_message("rgb8", RGB)
    message.data = message.data[:-1]
    with pytest.raises(FrameDecodeError, match="does not hold 2 rows of 9 bytes"):
        raw_to_rgb(message, "bag:/cam#3")
    with pytest.raises(FrameDecodeError, match="encoding changed to 'bayer_rggb8'"):
        raw_to_rgb(raw_message("bayer_rggb8", RGB), "bag:/cam#4")


@pytest.mark.parametrize("fmt", ["jpeg", "png", "rgb8; jpeg compressed bgr8", "mono8; png compressed"])
def test_readable_compressed_formats(fmt):
    check_compressed_format("t", fmt)


@pytest.mark.parametrize("fmt", ["16UC1; compressedDepth png", "bayer_rggb8; jpeg compressed bgr8", "theora"])
def test_unreadable_compressed_formats(fmt):
    with pytest.raises(SourceError, match="cannot be replayed"):
        check_compressed_format("t", fmt)


def test_header_stamp_from_cdr_either_byte_order_and_ros1():
    little = b"\x00\x01\x00\x00" + struct.pack("<iI", 12, 345)
    big = b"\x00\x00\x00\x00" + struct.pack(">iI", 12, 345)
    ros1 = struct.pack("<III", 7, 12, 345)
    assert header_stamp_ns(little, ros1=False) == header_stamp_ns(big, ros1=False) == 12_000_000_345
    assert header_stamp_ns(ros1, ros1=True) == 12_000_000_345


@pytest.mark.parametrize(
    ("fmt", "stored_order"),
    [("png", "bgr"), ("rgb8; png compressed bgr8", "bgr"), ("rgb8; png compressed rgb8", "rgb"),
     ("bgra8; png compressed rgba8", "rgb")],
)
def test_compressed_pixels_come_out_rgb_in_the_order_the_format_names(fmt, stored_order):
    """image_transport writes bgr8 (as image files are stored); an encoder that names rgb8 after
    'compressed' stored the RGB buffer as is, and its pixels come out unswapped (lossless PNG: exact)."""
    stored = RGB[:, :, ::-1] if stored_order == "bgr" else RGB
    data = np.frombuffer(cv2.imencode(".png", np.ascontiguousarray(stored))[1].tobytes(), np.uint8)
    np.testing.assert_array_equal(compressed_to_rgb(SimpleNamespace(format=fmt, data=data), "t"), RGB)


@pytest.mark.parametrize("big_endian", [0, 1])
@pytest.mark.parametrize(("encoding", "order", "alpha"), [("rgb16", [0, 1, 2], False), ("bgr16", [2, 1, 0], False),
                                                         ("rgba16", [0, 1, 2], True), ("bgra16", [2, 1, 0], True)])
def test_16_bit_colour_keeps_the_high_byte(encoding, order, alpha, big_endian):
    words = RGB[:, :, order].astype(np.uint16) * 257 + 3  # high byte: the 8-bit value; low byte: noise
    if alpha:
        words = np.concatenate([words, np.full((2, 3, 1), 60000, np.uint16)], axis=2)
    stored = np.ascontiguousarray(words.astype(">u2" if big_endian else "<u2")).view(np.uint8).reshape(2, -1)
    message = raw_message(encoding, stored, padding=4)
    message.width, message.is_bigendian = 3, big_endian
    np.testing.assert_array_equal(raw_to_rgb(message, "t"), RGB)


def _smooth_rgb(height: int = 8, width: int = 12) -> np.ndarray:
    """Colours that vary slowly (chroma subsampling loses little) and differ per channel."""
    rows, cols = np.mgrid[0:height, 0:width]
    return np.stack([40 + 10 * cols, 200 - 8 * rows, 90 + 5 * rows + 4 * cols], axis=2).astype(np.uint8)


def _yuv(rgb: np.ndarray) -> np.ndarray:
    """BT.601 limited-range Y, U, V of each pixel (what camera YUV formats carry)."""
    r, g, b = (rgb[:, :, k].astype(np.float64) for k in range(3))
    y = 16 + 0.257 * r + 0.504 * g + 0.098 * b
    u = 128 - 0.148 * r - 0.291 * g + 0.439 * b
    v = 128 + 0.439 * r - 0.368 * g - 0.071 * b
    return np.stack([y, u, v], axis=2)


def _yuv_message(encoding: str, rgb: np.ndarray, padding: int = 0) -> SimpleNamespace:
    """``rgb`` in the named YUV layout, built from its definition: UYVY/YUYV share U and V
    between two pixels of a row, NV12/NV21 between a 2x2 block (after the luma plane)."""
    yuv = _yuv(rgb)
    height, width = rgb.shape[:2]
    y = yuv[:, :, 0]
    if encoding in ("yuv422", "uyvy", "yuv422_yuy2", "yuyv"):
        u, v = (yuv[:, :, k].reshape(height, width // 2, 2).mean(axis=2) for k in (1, 2))
        y0, y1 = y[:, 0::2], y[:, 1::2]
        quads = (u, y0, v, y1) if encoding in ("yuv422", "uyvy") else (y0, u, y1, v)
        packed = np.stack(quads, axis=2).reshape(height, 2 * width)
    else:
        u, v = (yuv[:, :, k].reshape(height // 2, 2, width // 2, 2).mean(axis=(1, 3)) for k in (1, 2))
        pairs = (u, v) if encoding == "nv12" else (v, u)
        packed = np.concatenate([y, np.stack(pairs, axis=2).reshape(height // 2, width)], axis=0)
    message = raw_message("mono8", np.round(packed).astype(np.uint8), padding)
    message.encoding, message.height, message.width = encoding, height, width
    return message


@pytest.mark.parametrize("encoding", ["yuv422", "uyvy", "yuv422_yuy2", "yuyv", "nv12", "nv21"])
def test_yuv_layouts_come_out_rgb(encoding):
    rgb = _smooth_rgb()
    decoded = raw_to_rgb(_yuv_message(encoding, rgb, padding=6), "t")
    assert decoded.shape == rgb.shape and decoded.dtype == np.uint8
    # rounding and the shared chroma only (4:2:0 shares it over 2x2 pixels); a layout read in the
    # wrong order (UYVY as YUYV, NV12 as NV21) is off by 100 or more
    assert np.abs(decoded.astype(int) - rgb).max() <= (6 if encoding.startswith("nv") else 4)


def test_yuv_with_an_odd_width_is_a_frame_error():
    message = _yuv_message("yuyv", _smooth_rgb())
    message.width = 11
    with pytest.raises(FrameDecodeError, match=r"11x8 yuyv\); frame skipped"):
        raw_to_rgb(message, "bag:/cam#2")
