"""ROS bags written here with rosbags' own writers (rosbag2 SQLite3 and MCAP, ROS 1) from the
embedded frames (downscaled to 160x90), read back as camera streams: cameras, stamps, order,
pixels, topic choice, and the one-line refusals of bad bags."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from maskbench.data.images import load_image
from maskbench.data.sources import STUDY_CAMERAS, embedded_nuscenes, find_images
from maskbench.rig.camera_streams import FrameDecodeError, SourceError, SourceKind
from maskbench.rig.sources import open_source
from maskbench.utils.errors import RuntimeNotInstalled

rosbags = pytest.importorskip("rosbags")
from rosbags.rosbag1 import Writer as Ros1Writer  # noqa: E402
from rosbags.rosbag2 import StoragePlugin  # noqa: E402
from rosbags.rosbag2 import Writer as Ros2Writer  # noqa: E402
from rosbags.typesys import Stores, get_typestore  # noqa: E402

FORMATS = ("sqlite3", "mcap", "ros1")
FRAMES = 6
INTERVAL_NS = 83_333_333  # 12 Hz
START_NS = 1_532_402_927_000_000_000
# (topic, how it is stored, the camera's phase in ns): three cameras, raw rgb8 and bgr8, and jpeg.
CAMERAS = (
    ("/cam_front/image_raw", "rgb8", 7_000_000),
    ("/cam_front_left/image_raw", "bgr8", 0),
    ("/cam_front_right/image/compressed", "jpeg", 15_000_000),
)
IMAGE = "sensor_msgs/msg/Image"
COMPRESSED = "sensor_msgs/msg/CompressedImage"


@pytest.fixture(scope="module")
def small_frames() -> list[np.ndarray]:
    """The study's three embedded front frames, RGB, at 160x90."""
    refs = find_images(embedded_nuscenes(), cameras=list(STUDY_CAMERAS))
    by_camera = {ref.camera: ref.path for ref in refs}
    return [
        cv2.resize(load_image(by_camera[camera]), (160, 90), interpolation=cv2.INTER_AREA) for camera in STUDY_CAMERAS
    ]


def expected_pixels(small_frames: list[np.ndarray], camera: int, number: int) -> np.ndarray:
    """Frame ``number`` of camera ``camera``: its image rolled sideways, so every frame differs."""
    return np.roll(small_frames[camera], 4 * number, axis=1)


@dataclass(frozen=True)
class Topic:
    name: str
    msgtype: str
    messages: list[tuple[int, object]]  # (receive time ns, message)


class BagWriter:
    """Writes topics to a bag of one format with rosbags; messages built from the right typestore."""

    def __init__(self, fmt: str):
        self.fmt = fmt
        self.ros1 = fmt == "ros1"
        self.typestore = get_typestore(Stores.ROS1_NOETIC if self.ros1 else Stores.LATEST)

    def header(self, stamp_ns: int) -> object:
        types = self.typestore.types
        stamp = types["builtin_interfaces/msg/Time"](sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9)
        extra = {"seq": 0} if self.ros1 else {}
        return types["std_msgs/msg/Header"](stamp=stamp, frame_id="camera", **extra)

    def image(self, stamp_ns: int, rgb: np.ndarray, encoding: str) -> object:
        pixels = {"rgb8": rgb, "bgr8": rgb[:, :, ::-1], "mono8": rgb[:, :, :1]}.get(encoding, rgb)
        pixels = np.ascontiguousarray(pixels)
        height, width = pixels.shape[:2]
        step = pixels.strides[0]
        if encoding in ("mono16", "16UC1"):
            step = 2 * width
            pixels = np.zeros((height, step), np.uint8)
        return self.typestore.types[IMAGE](
            header=self.header(stamp_ns), height=height, width=width, encoding=encoding,
            is_bigendian=0, step=step, data=pixels.reshape(-1),
        )

    def compressed(self, stamp_ns: int, rgb: np.ndarray, fmt: str = "jpeg", data: bytes | None = None) -> object:
        if data is None:
            data = cv2.imencode(".jpg", rgb[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
        return self.typestore.types[COMPRESSED](
            header=self.header(stamp_ns), format=fmt, data=np.frombuffer(data, np.uint8)
        )

    def write(self, path: Path, topics: list[Topic]) -> Path:
        """The bag at ``path`` (a folder for rosbag2, ``path.bag`` for ROS 1); what to pass to open_source."""
        if self.ros1:
            path = path.with_suffix(".bag")
            with Ros1Writer(path) as writer:
                self._write_all(writer, topics, self.typestore.serialize_ros1)
            return path
        plugin = StoragePlugin.MCAP if self.fmt == "mcap" else StoragePlugin.SQLITE3
        with Ros2Writer(path, version=9, storage_plugin=plugin) as writer:
            self._write_all(writer, topics, self.typestore.serialize_cdr)
        return path

    def _write_all(self, writer, topics: list[Topic], serialize: Callable) -> None:
        connections = {topic.name: writer.add_connection(topic.name, topic.msgtype, typestore=self.typestore)
                       for topic in topics}
        stream = sorted((received, topic.name, topic.msgtype, message)
                        for topic in topics for received, message in topic.messages)
        for received, name, msgtype, message in stream:
            writer.write(connections[name], received, serialize(message, msgtype))


def camera_topics(writer: BagWriter, small_frames: list[np.ndarray], frames: int = FRAMES) -> list[Topic]:
    """The three cameras at 12 Hz, each at its phase; received 2 ms after capture."""
    topics = []
    for camera, (name, stored, phase) in enumerate(CAMERAS):
        messages = []
        for number in range(frames):
            stamp = START_NS + phase + number * INTERVAL_NS
            rgb = expected_pixels(small_frames, camera, number)
            message = writer.compressed(stamp, rgb) if stored == "jpeg" else writer.image(stamp, rgb, stored)
            messages.append((stamp + 2_000_000, message))
        topics.append(Topic(name, COMPRESSED if stored == "jpeg" else IMAGE, messages))
    return topics


@pytest.fixture(scope="module", params=FORMATS)
def camera_bag(request, small_frames, tmp_path_factory) -> tuple[str, Path]:
    writer = BagWriter(request.param)
    path = writer.write(tmp_path_factory.mktemp(request.param) / "cameras", camera_topics(writer, small_frames))
    return request.param, path


def test_bag_replays_cameras_at_header_stamps_with_their_pixels(camera_bag, small_frames):
    fmt, path = camera_bag
    streams = open_source(path)
    assert streams.kind is (SourceKind.ROS1_BAG if fmt == "ros1" else SourceKind.ROS2_BAG)
    names = sorted(name for name, _, _ in CAMERAS)
    assert streams.cameras == tuple(names)
    assert all(rate == pytest.approx(12.0, rel=1e-6) for rate in streams.rates_hz.values())
    assert streams.origin_ns == START_NS  # the front-left camera's first header stamp, not its receive time

    frames = list(streams.frames())
    expected = sorted(
        (phase + number * INTERVAL_NS, names.index(name), name, number)
        for name, _, phase in CAMERAS for number in range(FRAMES)
    )
    assert [(frame.stamp_ns, frame.camera, frame.index) for frame in frames] == [
        (stamp, name, number) for stamp, _, name, number in expected
    ]
    for frame in frames:
        camera = [name for name, _, _ in CAMERAS].index(frame.camera)
        pixels = frame.decode()
        want = expected_pixels(small_frames, camera, frame.index)
        assert pixels.dtype == np.uint8 and pixels.shape == (90, 160, 3)
        if CAMERAS[camera][1] == "jpeg":
            assert np.abs(pixels.astype(int) - want).mean() < 3.0
        else:
            np.testing.assert_array_equal(pixels, want)  # rgb8 as is, bgr8 swapped back to RGB


def test_topics_choose_the_cameras_in_the_order_given(camera_bag):
    _, path = camera_bag
    chosen = ["/cam_front_right/image/compressed", "/cam_front/image_raw"]
    streams = open_source(path, topics=chosen)
    assert streams.cameras == tuple(chosen)
    assert {frame.camera for frame in streams.frames()} == set(chosen)


def test_unknown_topic_lists_the_image_topics(camera_bag):
    _, path = camera_bag
    with pytest.raises(SourceError) as err:
        open_source(path, topics=["/cam_back/image_raw"])
    message = str(err.value)
    assert "/cam_back/image_raw is not in the bag" in message and "/cam_front_left/image_raw" in message
    assert "\n" not in message


def test_looped_bag_keeps_the_rate_across_the_seam(camera_bag):
    _, path = camera_bag
    streams = open_source(path, topics=["/cam_front_left/image_raw"], duration_s=0.99, loop=True)
    frames = list(streams.frames())
    assert [frame.stamp_ns for frame in frames] == [number * INTERVAL_NS for number in range(12)]
    assert [frame.index for frame in frames] == list(range(12))
    assert frames[FRAMES].source.endswith("#0")  # the second pass starts from the bag's first frame again


def test_truncated_bag_is_refused_before_replay(camera_bag, tmp_path):
    _, path = camera_bag
    copy = tmp_path / path.name
    (shutil.copytree if path.is_dir() else shutil.copy)(path, copy)
    data_file = copy if copy.is_file() else next(file for file in copy.iterdir() if file.suffix in (".db3", ".mcap"))
    data = data_file.read_bytes()
    data_file.write_bytes(data[: len(data) // 2])
    with pytest.raises(SourceError) as err:
        open_source(copy)
    assert str(err.value).startswith(f"{copy}: not a readable ROS bag") and "\n" not in str(err.value)


@pytest.mark.parametrize("fmt", ["mcap", "ros1"])
def test_bag_without_image_topics_lists_its_topics(fmt, tmp_path):
    writer = BagWriter(fmt)
    types = writer.typestore.types
    imu = types["sensor_msgs/msg/Imu"]
    vector = types["geometry_msgs/msg/Vector3"](x=0.0, y=0.0, z=9.8)
    quaternion = types["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=0.0, w=1.0)
    covariance = np.zeros(9, np.float64)
    imu_message = imu(header=writer.header(START_NS), orientation=quaternion, orientation_covariance=covariance,
                      angular_velocity=vector, angular_velocity_covariance=covariance,
                      linear_acceleration=vector, linear_acceleration_covariance=covariance)
    text = types["std_msgs/msg/String"](data="hello")
    path = writer.write(tmp_path / "no_images", [
        Topic("/imu", "sensor_msgs/msg/Imu", [(START_NS, imu_message)]),
        Topic("/chatter", "std_msgs/msg/String", [(START_NS, text)]),
    ])
    with pytest.raises(SourceError) as err:
        open_source(path)
    assert str(err.value) == (
        f"{path}: no sensor_msgs/Image or CompressedImage topic (topics: /chatter (std_msgs/msg/String), "
        "/imu (sensor_msgs/msg/Imu)); record the camera topics"
    )


@pytest.mark.parametrize(("fmt", "encoding"), [("sqlite3", "bayer_rggb8"), ("ros1", "mono16"), ("mcap", "32FC1")])
def test_undecodable_raw_encoding_is_refused_naming_topic_and_encoding(fmt, encoding, small_frames, tmp_path):
    writer = BagWriter(fmt)
    messages = [(START_NS + n * INTERVAL_NS, writer.image(START_NS + n * INTERVAL_NS, small_frames[0], encoding))
                for n in range(2)]
    path = writer.write(tmp_path / "odd", [Topic("/camera/image_raw", IMAGE, messages)])
    with pytest.raises(SourceError) as err:
        open_source(path)
    assert str(err.value).startswith(f"{path}: topic /camera/image_raw: image encoding {encoding!r} cannot be replayed")


def test_compressed_depth_is_refused(small_frames, tmp_path):
    writer = BagWriter("mcap")
    png16 = cv2.imencode(".png", np.zeros((9, 16), np.uint16))[1].tobytes()
    messages = [(START_NS + n, writer.compressed(START_NS + n * INTERVAL_NS, small_frames[0],
                                                  "16UC1; compressedDepth png", png16)) for n in range(2)]
    path = writer.write(tmp_path / "depth", [Topic("/depth/compressedDepth", COMPRESSED, messages)])
    with pytest.raises(SourceError, match="compressed format '16UC1; compressedDepth png' cannot be replayed"):
        open_source(path)


def test_corrupt_jpeg_mid_stream_raises_frame_decode_error_and_the_rest_decode(small_frames, tmp_path):
    writer = BagWriter("sqlite3")
    good = cv2.imencode(".jpg", small_frames[0])[1].tobytes()
    messages = []
    for number in range(4):
        data = good[:40] if number == 2 else good  # a JPEG cut after its header
        stamp = START_NS + number * INTERVAL_NS
        messages.append((stamp, writer.compressed(stamp, small_frames[0], "rgb8; jpeg compressed bgr8", data)))
    path = writer.write(tmp_path / "corrupt", [Topic("/camera/image/compressed", COMPRESSED, messages)])
    frames = list(open_source(path).frames())
    assert len(frames) == 4
    for frame in frames[:2] + frames[3:]:
        assert frame.decode().shape == (90, 160, 3)
    with pytest.raises(FrameDecodeError, match=r"/camera/image/compressed#2: 40-byte .* does not decode"):
        frames[2].decode()


def test_zero_header_stamp_falls_back_to_receive_time(small_frames, tmp_path):
    writer = BagWriter("mcap")
    received = [START_NS + number * 100_000_000 for number in range(3)]  # 10 Hz by receive time
    messages = [(stamp, writer.image(0, small_frames[0], "rgb8")) for stamp in received]
    path = writer.write(tmp_path / "unstamped", [Topic("/camera/image_raw", IMAGE, messages)])
    streams = open_source(path)
    assert streams.origin_ns == START_NS
    assert streams.rates_hz["/camera/image_raw"] == pytest.approx(10.0)
    assert [frame.stamp_ns for frame in streams.frames()] == [0, 100_000_000, 200_000_000]


def test_a_one_frame_topic_is_refused(small_frames, tmp_path):
    writer = BagWriter("ros1")
    path = writer.write(tmp_path / "one", [Topic("/camera/image_raw", IMAGE,
                                                  [(START_NS, writer.image(START_NS, small_frames[0], "rgb8"))])])
    with pytest.raises(SourceError, match="topic /camera/image_raw: 1 message"):
        open_source(path)


def test_missing_rosbags_says_how_to_install(camera_bag, monkeypatch):
    _, path = camera_bag
    monkeypatch.setitem(__import__("sys").modules, "rosbags.highlevel", None)
    with pytest.raises(RuntimeNotInstalled, match=r"pip install 'maskbench\[rig\]'"):
        open_source(path)


def test_cameras_received_out_of_stamp_order_arrive_in_stamp_order(small_frames, tmp_path):
    """A camera with a 200 ms transport delay is received after later frames of the other: the
    replay still gives the frames in capture (header stamp) order."""
    writer = BagWriter("mcap")
    topics = []
    for name, delay in (("/fast/image_raw", 1_000_000), ("/slow/image_raw", 200_000_000)):
        messages = []
        for number in range(6):
            stamp = START_NS + number * INTERVAL_NS
            messages.append((stamp + delay, writer.image(stamp, small_frames[0], "rgb8")))
        topics.append(Topic(name, IMAGE, messages))
    frames = list(open_source(writer.write(tmp_path / "skew", topics)).frames())
    assert [(frame.stamp_ns, frame.camera) for frame in frames] == [
        (number * INTERVAL_NS, name) for number in range(6) for name in ("/fast/image_raw", "/slow/image_raw")
    ]


def test_a_stamp_that_steps_back_arrives_right_after_its_predecessor(small_frames, tmp_path):
    writer = BagWriter("sqlite3")
    offsets = [0, 100_000_000, 50_000_000, 200_000_000]  # the camera's clock stepped back once
    messages = [(START_NS + number, writer.image(START_NS + offset, small_frames[0], "rgb8"))
                for number, offset in enumerate(offsets)]
    frames = list(open_source(writer.write(tmp_path / "step", [Topic("/camera/image_raw", IMAGE, messages)])).frames())
    assert [frame.stamp_ns for frame in frames] == [0, 100_000_000, 100_000_000, 200_000_000]
    assert [frame.source.rsplit("#", 1)[1] for frame in frames] == ["0", "1", "2", "3"]


def _split(topics: list[Topic], parts: int, shift_ns: int = 0) -> list[list[Topic]]:
    """The topics' messages cut by receive time into ``parts`` files, as ``rosbag record --split``
    does; part ``k`` shifted by ``k * shift_ns`` (a later, separate recording)."""
    received = sorted(time for topic in topics for time, _ in topic.messages)
    bounds = [received[len(received) * k // parts] for k in range(1, parts)] + [received[-1] + 1]
    cut, start = [], received[0]
    for k, stop in enumerate(bounds):
        cut.append([Topic(topic.name, topic.msgtype, [(time + k * shift_ns, message)
                                                        for time, message in topic.messages if start <= time < stop])
                    for topic in topics])
        start = stop
    return cut


def test_a_split_ros1_recording_replays_as_one(small_frames, tmp_path):
    """The folder of a recording split in three files (numbered as rosbag numbers them: _2 comes
    before _10) replays exactly like the same recording in one file. (rosbag2 keeps its split
    files in one folder with metadata.yaml, which rosbags reads as one already.)"""
    writer = BagWriter("ros1")
    whole = writer.write(tmp_path / "whole", camera_topics(writer, small_frames))
    folder = tmp_path / "drive"
    folder.mkdir()
    for number, part in zip((1, 2, 10), _split(camera_topics(writer, small_frames), 3)):
        writer.write(folder / f"drive_{number}", part)
    (folder / "notes.txt").write_text("not a bag")

    split, one = open_source(folder), open_source(whole)
    assert split.kind is SourceKind.ROS1_BAG
    assert (split.cameras, split.rates_hz, split.origin_ns) == (one.cameras, one.rates_hz, one.origin_ns)
    frames, expected = list(split.frames()), list(one.frames())
    assert [(f.stamp_ns, f.camera, f.index) for f in frames] == [(f.stamp_ns, f.camera, f.index) for f in expected]
    for frame, same in zip(frames, expected):
        np.testing.assert_array_equal(frame.decode(), same.decode())


def test_split_files_sort_as_rosbag_numbers_them(tmp_path):
    from maskbench.rig.bags import split_files

    for name in ("run_10.bag", "run_2.bag", "run_1.bag", "other.txt"):
        (tmp_path / name).write_bytes(b"")
    assert [path.name for path in split_files(tmp_path)] == ["run_1.bag", "run_2.bag", "run_10.bag"]


def test_files_of_separate_recordings_in_one_folder_are_refused(small_frames, tmp_path):
    writer = BagWriter("ros1")
    folder = tmp_path / "two"
    folder.mkdir()
    for number, part in enumerate(_split(camera_topics(writer, small_frames), 2, shift_ns=3600 * 10**9)):
        writer.write(folder / f"drive_{number}", part)
    with pytest.raises(SourceError, match=r"drive_1\.bag starts 3600 s after drive_0\.bag ends, so they are not one "
                                          r"recording; move the other recordings' files to their own folders"):
        open_source(folder)
