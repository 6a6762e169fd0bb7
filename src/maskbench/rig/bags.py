"""Camera streams from ROS bags: rosbag2 (SQLite3 or MCAP) and ROS 1, read with ``rosbags``.

``rosbags`` is pure Python (no ROS install), so the robot's lean install can replay its own
recordings. Each image topic is one camera, at its messages' ``header.stamp`` (the camera's
capture time; the bag's receive time when the stamp is zero, as drivers that do not stamp leave
it). Opening checks everything a replay needs before any model work (the bag is readable, the
topics exist and hold images in a readable encoding, each has a rate) and reads only a few
messages; frames are then read one at a time, each camera through its own reader, and decoded
only when the replay calls :attr:`~maskbench.rig.camera_streams.CameraFrame.decode`.

A ROS 1 recording split into several files (``rosbag record --split``: ``drive_0.bag``,
``drive_1.bag`` ...) is given as the folder holding them and read as one (rosbags merges them by
time). Files that are not one recording (a gap of more than :data:`MAX_SPLIT_GAP_S` between one
file's end and the next one's start) are refused: a replay would wait out the gap.
"""

from __future__ import annotations

import heapq
import re
import statistics
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, replace
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from maskbench.utils.errors import RuntimeNotInstalled, one_line

from .camera_streams import CameraStreams, FrameDecodeError, RecordedFrame, SourceError, SourceKind, Track
from .image_messages import (
    COMPRESSED_TYPE,
    IMAGE_TYPES,
    check_compressed_format,
    check_raw_encoding,
    compressed_to_rgb,
    header_stamp_ns,
    raw_to_rgb,
)

if TYPE_CHECKING:
    from rosbags.highlevel import AnyReader

# Frames read at open to estimate a topic's rate (median interval): enough to shrug off a few
# dropped or late frames, few enough to open a long bag at once.
RATE_SAMPLE = 33

# Files of one ROS 1 recording follow each other (split) or overlap (topics recorded in parallel);
# a longer gap means separate recordings, which one replay would wait between.
MAX_SPLIT_GAP_S = 10.0

_FIX_CORRUPT = "copy the bag again; a recording cut short is repaired by rosbag reindex (ROS 1) or mcap recover (MCAP)"


def is_bag(path: Path) -> bool:
    """A ROS 1 ``.bag`` file, a rosbag2 folder (``metadata.yaml``), a folder of ROS 1 ``.bag`` files
    (a split recording), or a bare ``.mcap``/``.db3`` file."""
    if path.is_dir():
        return (path / "metadata.yaml").is_file() or bool(split_files(path))
    return path.suffix.lower() in {".bag", ".mcap", ".db3"}


def split_files(folder: Path) -> list[Path]:
    """The ROS 1 ``.bag`` files directly in ``folder``, in the order ``rosbag record --split``
    numbers them (``drive_2.bag`` before ``drive_10.bag``); none for a rosbag2 folder."""
    if (folder / "metadata.yaml").is_file():
        return []
    files = [path for path in folder.iterdir() if path.suffix.lower() == ".bag" and path.is_file()]
    return sorted(files, key=lambda path: [int(part) if part.isdigit() else part
                                           for part in re.split(r"(\d+)", path.stem)])


def open_bag(path: Path | str, topics: Sequence[str] | None = None) -> CameraStreams:
    """The bag's image topics (or ``topics``) as cameras; one pass, unlooped (see
    :meth:`CameraStreams.limited`). Raises :class:`SourceError` (one line) for anything that would
    stop the replay."""
    path = Path(path)
    if not path.exists():
        raise SourceError(f"{path}: no such bag; check the path")
    files = (split_files(path) if path.is_dir() else []) or [path]  # a rosbag2 folder: the folder itself
    bag = _Bag(path, tuple(files), files[0].is_file() and files[0].suffix.lower() == ".bag", None)
    with _open_reader(bag) as reader:
        _check_one_recording(bag, reader)
        available = {name: info.msgtype or "?" for name, info in reader.topics.items()}
        chosen = _choose_topics(path, available, topics)
        bag = replace(bag, typestore=reader.typestore)
        tracks, read = zip(*(_track(bag, reader, topic, available[topic]) for topic in chosen))
    kind = SourceKind.ROS1_BAG if bag.ros1 else SourceKind.ROS2_BAG
    return CameraStreams(kind, f"{kind.value} {path}", tuple(tracks), lambda: _read_pass(bag, tuple(read)))


@dataclass(frozen=True)
class _Bag:
    path: Path  # what the user named: a bag, a rosbag2 folder, or a folder of split ROS 1 files
    files: tuple[Path, ...]  # what rosbags opens: the split files, else the path itself
    ros1: bool
    typestore: Any  # rosbags' Typestore: the message classes the bag declares (None before opening)

    def deserialize(self, raw: bytes | memoryview, msgtype: str) -> Any:
        if self.ros1:
            return self.typestore.deserialize_ros1(raw, msgtype)
        return self.typestore.deserialize_cdr(raw, msgtype)


@contextmanager
def _open_reader(bag: _Bag) -> Iterator[AnyReader]:
    """An opened AnyReader (closed after), or a one-line SourceError saying why the bag cannot be read."""
    try:
        from rosbags.highlevel import AnyReader
        from rosbags.typesys import Stores, get_typestore
    except ImportError:
        raise RuntimeNotInstalled(
            f"{bag.path}: reading ROS bags needs the rosbags package; pip install 'maskbench[rig]'"
        ) from None
    try:
        # Old rosbag2 bags carry no message definitions: read them with the current LTS types.
        reader = AnyReader(list(bag.files), default_typestore=get_typestore(Stores.LATEST))
        reader.open()
    except Exception as err:  # rosbags, sqlite (apsw), lz4/zstd and OS errors all mean the same here
        raise SourceError(f"{bag.path}: not a readable ROS bag ({one_line(err)}); {_FIX_CORRUPT}") from None
    try:
        yield reader
    finally:
        reader.close()


def _check_one_recording(bag: _Bag, reader: AnyReader) -> None:
    """Split files must follow each other or overlap (see :data:`MAX_SPLIT_GAP_S`)."""
    parts: Sequence[Any] = reader.readers  # rosbags' Reader1 or Reader2, one per file
    spans = sorted((part.start_time, part.end_time, file) for part, file in zip(parts, bag.files) if part.message_count)
    end, last = None, None
    for start, stop, file in spans:
        if end is not None and start - end > MAX_SPLIT_GAP_S * 1e9:
            raise SourceError(
                f"{bag.path}: {file.name} starts {(start - end) / 1e9:.0f} s after {last} ends, so they are not "
                "one recording; move the other recordings' files to their own folders"
            )
        if end is None or stop > end:
            end, last = stop, file.name


def _choose_topics(path: Path, available: dict[str, str], topics: Sequence[str] | None) -> list[str]:
    images = sorted(name for name, msgtype in available.items() if msgtype in IMAGE_TYPES)
    if not images:
        listed = ", ".join(f"{name} ({msgtype})" for name, msgtype in sorted(available.items())) or "none"
        raise SourceError(
            f"{path}: no sensor_msgs/Image or CompressedImage topic (topics: {listed}); record the camera topics"
        )
    if topics is None:
        return images
    if not topics:
        raise SourceError(f"{path}: --topics is empty; choose from {', '.join(images)}")
    unknown = [topic for topic in topics if topic not in images]
    if unknown:
        what = "is not an image topic" if all(topic in available for topic in unknown) else "is not in the bag"
        raise SourceError(f"{path}: {', '.join(unknown)} {what}; choose --topics from {', '.join(images)}")
    return list(dict.fromkeys(topics))


@dataclass(frozen=True)
class _Topic:
    name: str
    msgtype: str
    count: int


def _track(bag: _Bag, reader: AnyReader, topic: str, msgtype: str) -> tuple[Track, _Topic]:
    """One topic as a camera: its encoding checked on the first message, its rate from the first
    :data:`RATE_SAMPLE` stamps."""
    where = f"{bag.path}: topic {topic}"
    connections = [connection for connection in reader.connections if connection.topic == topic]
    count = sum(connection.msgcount for connection in connections)
    try:
        with closing(reader.messages(connections=connections)) as messages:
            sample = list(islice(messages, RATE_SAMPLE))
        first = bag.deserialize(sample[0][2], msgtype) if sample else None
    except Exception as err:
        raise SourceError(f"{where}: cannot be read ({one_line(err)}); {_FIX_CORRUPT}") from None
    if first is None or count < 2:
        raise SourceError(f"{where}: {count} message(s); a replay needs at least two frames per camera")
    if msgtype == COMPRESSED_TYPE:
        check_compressed_format(where, str(first.format))
    else:
        check_raw_encoding(where, str(first.encoding))
    stamps = [_stamp(raw, received, bag.ros1) for _, received, raw in sample]
    intervals = [later - earlier for earlier, later in zip(stamps, stamps[1:]) if later > earlier]
    if not intervals:
        raise SourceError(f"{where}: its first {len(stamps)} frames share one stamp; cannot tell the camera's rate")
    rate_hz = 1e9 / statistics.median(intervals)
    return Track(topic, rate_hz, count, min(stamps)), _Topic(topic, msgtype, count)


def _read_pass(bag: _Bag, topics: tuple[_Topic, ...]) -> Iterator[RecordedFrame]:
    """One pass over the chosen topics with one reader, in header-stamp order.

    A bag is in receive order, and cameras' stamps can interleave otherwise (a camera with a longer
    transport delay is received later). So each camera pulls its next frame from the shared
    reader, queueing the other cameras' frames met on the way, and the cameras are merged by
    stamp. A camera that has given all its messages (the bag index's count) pulls no more, so the
    queues hold only the frames within the cameras' receive skew.
    """
    with _open_reader(bag) as reader:
        position = {topic.name: number for number, topic in enumerate(topics)}
        messages = reader.messages(connections=[c for c in reader.connections if c.topic in position])
        queues: list[deque[RecordedFrame]] = [deque() for _ in topics]
        numbers = [0] * len(topics)

        def read_one() -> bool:
            try:
                item = next(messages, None)
            except Exception as err:
                raise SourceError(
                    f"{bag.path}: unreadable after {sum(numbers)} frames ({one_line(err)}); {_FIX_CORRUPT}"
                ) from None
            if item is None:
                return False
            connection, received, raw = item
            track = position[connection.topic]
            where = f"{bag.path}:{connection.topic}#{numbers[track]}"
            numbers[track] += 1
            decode = _decoder(bag, raw, topics[track].msgtype, where)
            queues[track].append(RecordedFrame(track, _stamp(raw, received, bag.ros1), where, decode))
            return True

        def camera(track: int) -> Iterator[RecordedFrame]:
            for _ in range(topics[track].count):
                while not queues[track]:
                    if not read_one():
                        return
                yield queues[track].popleft()

        cameras = [camera(track) for track in range(len(topics))]
        yield from heapq.merge(*cameras, key=lambda recorded: (recorded.stamp_ns, recorded.track))


def _stamp(raw: bytes | memoryview, received_ns: int, ros1: bool) -> int:
    try:
        stamp = header_stamp_ns(raw, ros1)
    except Exception:  # a message too short for a header: its decode will report it
        return received_ns
    return stamp if stamp > 0 else received_ns


def _decoder(bag: _Bag, raw: bytes | memoryview, msgtype: str, where: str) -> Callable[[], np.ndarray]:
    """Deserialize and decode at call time, in the replay pipeline, where the cost belongs."""
    to_rgb = compressed_to_rgb if msgtype == COMPRESSED_TYPE else raw_to_rgb

    def decode() -> np.ndarray:
        try:
            message = bag.deserialize(raw, msgtype)
        except Exception as err:
            raise FrameDecodeError(f"{where}: message does not deserialize ({one_line(err)}); frame skipped") from None
        return to_rgb(message, where)

    return decode
