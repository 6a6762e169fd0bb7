"""What decoding one camera frame costs the rig: an image file, and a frame from a ROS bag (raw
rgb8 and bgr8, JPEG; ROS 1 and MCAP), at the embedded front frame's 1600x900.

Each bag is written here with rosbags from the embedded frame, opened with the rig's own source
(``maskbench.rig.sources.open_source``) and its first frame's ``decode()`` timed: the best of 5
repeats of 20 calls.

    .venv/bin/python tools/rig_decode_cost.py
"""

from __future__ import annotations

import tempfile
import timeit
from pathlib import Path

import cv2
import numpy as np
from rosbags.rosbag1 import Writer as Ros1Writer
from rosbags.rosbag2 import StoragePlugin
from rosbags.rosbag2 import Writer as Ros2Writer
from rosbags.typesys import Stores, get_typestore

from maskbench.data.images import load_image
from maskbench.data.sources import embedded_nuscenes, find_images
from maskbench.rig.sources import open_source

STAMP_NS, INTERVAL_NS = 1_532_402_927_000_000_000, 83_333_333


def message(typestore, ros1: bool, kind: str, rgb: np.ndarray, stamp_ns: int):
    types = typestore.types
    header = types["std_msgs/msg/Header"](stamp=types["builtin_interfaces/msg/Time"](
        sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9), frame_id="camera", **({"seq": 0} if ros1 else {}))
    if kind == "jpeg":
        data = cv2.imencode(".jpg", rgb[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])[1].reshape(-1)
        return "sensor_msgs/msg/CompressedImage", types["sensor_msgs/msg/CompressedImage"](
            header=header, format="rgb8; jpeg compressed bgr8", data=data)
    pixels = np.ascontiguousarray(rgb if kind == "rgb8" else rgb[:, :, ::-1])
    return "sensor_msgs/msg/Image", types["sensor_msgs/msg/Image"](
        header=header, height=pixels.shape[0], width=pixels.shape[1], encoding=kind, is_bigendian=0,
        step=pixels.strides[0], data=pixels.reshape(-1))


def write_bag(folder: Path, storage: str, kind: str, rgb: np.ndarray) -> Path:
    """Three frames of one camera topic; the path to give ``open_source``."""
    ros1 = storage == "ros1"
    typestore = get_typestore(Stores.ROS1_NOETIC if ros1 else Stores.LATEST)
    path = folder / f"{storage}-{kind}{'.bag' if ros1 else ''}"
    writer = Ros1Writer(path) if ros1 else Ros2Writer(path, version=9, storage_plugin=StoragePlugin.MCAP)
    serialize = typestore.serialize_ros1 if ros1 else typestore.serialize_cdr
    with writer:
        connection = None
        for number in range(3):
            stamp = STAMP_NS + number * INTERVAL_NS
            msgtype, msg = message(typestore, ros1, kind, rgb, stamp)
            if connection is None:
                connection = writer.add_connection("/camera/image", msgtype, typestore=typestore)
            writer.write(connection, stamp + 2_000_000, serialize(msg, msgtype))
    return path


def per_frame_ms(decode) -> float:
    return min(timeit.repeat(decode, number=20, repeat=5)) / 20 * 1e3


def main() -> None:
    front = next(ref.path for ref in find_images(embedded_nuscenes(), ["CAM_FRONT"]))
    rgb = load_image(front)
    print(f"image file (JPEG, {rgb.shape[1]}x{rgb.shape[0]}): "
          f"{per_frame_ms(lambda: load_image(front)):.2f} ms")
    with tempfile.TemporaryDirectory() as folder:
        for storage in ("ros1", "mcap"):
            for kind in ("rgb8", "bgr8", "jpeg"):
                frame = next(open_source(write_bag(Path(folder), storage, kind, rgb)).frames())
                print(f"{storage} bag, {kind}: {per_frame_ms(frame.decode):.2f} ms")


if __name__ == "__main__":
    main()
