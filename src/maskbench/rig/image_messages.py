"""ROS image messages (``sensor_msgs/Image``, ``sensor_msgs/CompressedImage``) to RGB pixels.

The replay feeds what :func:`maskbench.data.images.load_image` gives for a file: HxWx3 uint8 RGB,
grayscale as three equal channels, alpha dropped. Raw images are read through their ``step`` (rows
may be padded); compressed ones are decoded with OpenCV's ``imdecode`` like image files. Encodings
that are not 8-bit colour or grey (Bayer mosaics, 16-bit depth, floats) are refused when the bag
is opened, since their pixels are not what a detector trained on RGB expects.
"""

from __future__ import annotations

import struct
from typing import Any

import cv2
import numpy as np

from .camera_streams import FrameDecodeError, SourceError

IMAGE_TYPE = "sensor_msgs/msg/Image"
COMPRESSED_TYPE = "sensor_msgs/msg/CompressedImage"
IMAGE_TYPES = (IMAGE_TYPE, COMPRESSED_TYPE)

# Raw encoding -> (channels, the channels to take as R, G, B).
_RAW_ENCODINGS: dict[str, tuple[int, tuple[int, int, int]]] = {
    "rgb8": (3, (0, 1, 2)),
    "bgr8": (3, (2, 1, 0)),
    "rgba8": (4, (0, 1, 2)),
    "bgra8": (4, (2, 1, 0)),
    "mono8": (1, (0, 0, 0)),
}
_COMPRESSED_CODECS = ("jpeg", "jpg", "png")


def check_raw_encoding(where: str, encoding: str) -> None:
    """Refuse (one line) a raw encoding the rig cannot turn into RGB."""
    if encoding.lower() not in _RAW_ENCODINGS:
        raise SourceError(
            f"{where}: image encoding {encoding!r} cannot be replayed (the rig reads "
            f"{', '.join(_RAW_ENCODINGS)}); convert the topic to rgb8/bgr8 (e.g. debayer with image_proc) "
            "or leave it out with --topics"
        )


def check_compressed_format(where: str, fmt: str) -> None:
    """Refuse (one line) a compressed format that is not a colour or grey JPEG/PNG.

    ``format`` is ``"jpeg"``/``"png"``, or from image_transport ``"<raw encoding>; jpeg compressed
    bgr8"`` (the raw encoding before ``;`` must itself be readable) or ``"16UC1; compressedDepth png"``.
    """
    text = fmt.lower()
    raw, _, rest = text.partition(";")
    codec_text = rest if rest else raw
    if "compresseddepth" in text or not any(codec in codec_text for codec in _COMPRESSED_CODECS):
        raise SourceError(
            f"{where}: compressed format {fmt!r} cannot be replayed (the rig reads jpeg and png colour or grey "
            "images); record the colour topic instead or leave this one out with --topics"
        )
    if rest:
        check_raw_encoding(where, raw.strip())


def raw_to_rgb(message: Any, where: str) -> np.ndarray:
    """A ``sensor_msgs/Image`` as HxWx3 uint8 RGB (a copy: the message buffer may be reused)."""
    encoding = str(message.encoding).lower()
    if encoding not in _RAW_ENCODINGS:
        raise FrameDecodeError(f"{where}: encoding changed to {message.encoding!r} mid-stream; frame skipped")
    channels, order = _RAW_ENCODINGS[encoding]
    height, width, step = int(message.height), int(message.width), int(message.step)
    data = np.asarray(message.data, dtype=np.uint8).reshape(-1)
    if height <= 0 or width <= 0 or step < width * channels or data.size < height * step:
        raise FrameDecodeError(
            f"{where}: raw image of {data.size} bytes does not hold {height} rows of {step} bytes "
            f"({width}x{height} {encoding}); frame skipped"
        )
    rows = data[: height * step].reshape(height, step)[:, : width * channels]
    pixels = rows.reshape(height, width, channels)
    return np.ascontiguousarray(pixels[:, :, list(order)])


def compressed_to_rgb(message: Any, where: str) -> np.ndarray:
    """A ``sensor_msgs/CompressedImage`` decoded as an image file is (BGR -> RGB, grey -> 3 channels).

    image_transport names the compressed pixels' channel order after ``compressed`` (``"rgb8; jpeg
    compressed bgr8"``): it always writes bgr8, and its subscriber takes the decoded pixels to be
    in the order named, so an encoder that writes ``compressed rgb8`` stored RGB: kept as decoded.
    """
    data = np.asarray(message.data, dtype=np.uint8).reshape(-1)
    decoded = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if decoded is None:
        raise FrameDecodeError(f"{where}: {data.size}-byte {message.format!r} image does not decode; frame skipped")
    if _compressed_order(str(message.format)).startswith("rgb"):
        return decoded
    return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)


def _compressed_order(fmt: str) -> str:
    """The encoding image_transport names after ``compressed`` (``""`` where there is none)."""
    _, found, after = fmt.lower().partition("compressed ")
    return after.strip() if found else ""


def header_stamp_ns(raw: bytes | memoryview, ros1: bool) -> int:
    """The ``header.stamp`` of a serialized Image/CompressedImage, without deserializing its pixels.

    Both messages start with a ``std_msgs/Header``. ROS 1: ``seq`` (uint32), then ``stamp``
    (uint32 sec, uint32 nsec), little-endian. ROS 2 (CDR): a 4-byte encapsulation header whose
    second byte says the byte order (1: little-endian), then ``stamp`` (int32 sec, uint32 nanosec).
    """
    if ros1:
        sec, nsec = struct.unpack_from("<II", raw, 4)
    else:
        order = "<" if raw[1] == 1 else ">"
        sec, nsec = struct.unpack_from(f"{order}iI", raw, 4)
    return int(sec) * 1_000_000_000 + int(nsec)
