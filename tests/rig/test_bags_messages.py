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
