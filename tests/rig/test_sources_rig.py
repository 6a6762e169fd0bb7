"""Camera streams from files: the embedded default, any image folder on a declared clock, a
nuScenes-style folder at its file names' stamps; looping, duration, and the one-line refusals."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from maskbench.data.sources import STUDY_CAMERAS
from maskbench.rig.camera_streams import NS_PER_S, FrameDecodeError, SourceError, SourceKind
from maskbench.rig.sources import open_source

# The embedded frames' capture times (file names, microseconds): the cameras' phases on the rig.
EMBEDDED_US = {"CAM_FRONT": 1532402927612460, "CAM_FRONT_LEFT": 1532402927604844, "CAM_FRONT_RIGHT": 1532402927620339}
TWELVE_HZ_NS = round(NS_PER_S / 12)


def at_12_hz(number: int) -> int:
    return round(number * NS_PER_S / 12)


def write_image(path: Path, value: int) -> np.ndarray:
    """A small PNG (lossless, so decoded pixels can be compared) filled with ``value``; its RGB."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = np.full((9, 16, 3), value, np.uint8)
    rgb[0, 0] = (value, 0, 255 - value)  # not grey: a channel swap would show
    cv2.imwrite(str(path), rgb[:, :, ::-1])
    return rgb


def test_default_is_the_study_cameras_at_12_hz_at_their_recorded_phases():
    streams = open_source(duration_s=1.0)
    assert streams.kind is SourceKind.EMBEDDED
    assert streams.cameras == STUDY_CAMERAS
    assert streams.rates_hz == dict.fromkeys(STUDY_CAMERAS, 12.0)
    origin_us = min(EMBEDDED_US.values())
    frames = list(streams.frames())
    for camera in STUDY_CAMERAS:
        phase = (EMBEDDED_US[camera] - origin_us) * 1000
        stamps = [frame.stamp_ns for frame in frames if frame.camera == camera]
        assert stamps == [phase + at_12_hz(number) for number in range(12)]  # 12 a second, no drift
    assert [frame.stamp_ns for frame in frames] == sorted(frame.stamp_ns for frame in frames)
    assert frames[0].camera == "CAM_FRONT_LEFT" and frames[0].stamp_ns == 0
    image = frames[0].decode()
    assert image.shape == (900, 1600, 3) and image.dtype == np.uint8


def test_default_without_duration_cycles_on():
    frames = open_source().frames()
    taken = [next(frames) for _ in range(3 * 40)]
    assert [frame.index for frame in taken if frame.camera == "CAM_FRONT"] == list(range(40))


def test_image_folder_cameras_fire_together_and_cycle_from_different_images(tmp_path):
    pixels = [write_image(tmp_path / f"{name}.png", value) for name, value in (("a", 10), ("b", 20), ("c", 30))]
    streams = open_source(tmp_path, camera_count=2, fps=10, duration_s=0.6)
    assert streams.kind is SourceKind.IMAGE_FOLDER and streams.cameras == ("cam0", "cam1")
    assert streams.rates_hz == {"cam0": 10.0, "cam1": 10.0}
    frames = list(streams.frames())
    assert [(frame.stamp_ns, frame.camera) for frame in frames] == [
        (number * 100_000_000, camera) for number in range(6) for camera in ("cam0", "cam1")
    ]
    for frame in frames:
        first_image = int(frame.camera[-1])  # camera k starts at the k-th image, then cycles
        np.testing.assert_array_equal(frame.decode(), pixels[(first_image + frame.index) % 3])


def test_image_folder_staggered_spreads_the_cameras_over_the_interval(tmp_path):
    write_image(tmp_path / "a.png", 10)
    streams = open_source(tmp_path, camera_count=4, fps=10, stagger=True, duration_s=0.2)
    firsts = {}
    for frame in streams.frames():
        firsts.setdefault(frame.camera, frame.stamp_ns)
    assert firsts == {"cam0": 0, "cam1": 25_000_000, "cam2": 50_000_000, "cam3": 75_000_000}


def test_image_folder_without_loop_plays_each_image_once(tmp_path):
    for name in "ab":
        write_image(tmp_path / f"{name}.png", 5)
    frames = list(open_source(tmp_path, camera_count=1, fps=5, loop=False).frames())
    assert [frame.stamp_ns for frame in frames] == [0, 200_000_000]


def nuscenes_name(camera: str, microseconds: int) -> str:
    return f"n015-2018-07-24-11-22-45+0800__{camera}__{microseconds}.jpg"


def test_nuscenes_folder_merges_samples_and_sweeps_at_file_name_stamps(tmp_path):
    start_us = 1533151603512404
    for number in range(6):  # CAM_FRONT at 12 Hz: keyframe every 6th, sweeps between
        stamp = start_us + number * 83_333
        part = "samples" if number % 6 == 0 else "sweeps"
        write_image(tmp_path / part / "CAM_FRONT" / nuscenes_name("CAM_FRONT", stamp), 40)
    write_image(tmp_path / "samples" / "CAM_BACK" / nuscenes_name("CAM_BACK", start_us + 40_000), 50)
    write_image(tmp_path / "sweeps" / "CAM_BACK" / nuscenes_name("CAM_BACK", start_us + 140_000), 50)
    streams = open_source(tmp_path)
    assert streams.kind is SourceKind.NUSCENES and streams.cameras == ("CAM_BACK", "CAM_FRONT")
    assert streams.rates_hz["CAM_FRONT"] == pytest.approx(1e9 / 83_333_000)
    assert streams.rates_hz["CAM_BACK"] == pytest.approx(10.0)
    assert streams.origin_ns == start_us * 1000
    frames = list(streams.frames())
    assert [(frame.camera, frame.stamp_ns) for frame in frames][:4] == [
        ("CAM_FRONT", 0), ("CAM_BACK", 40_000_000), ("CAM_FRONT", 83_333_000), ("CAM_BACK", 140_000_000)
    ]
    assert [frame.camera for frame in open_source(tmp_path, cameras=["cam_front"]).frames()] == ["CAM_FRONT"] * 6


def test_nuscenes_gap_between_scenes_is_closed_to_one_interval(tmp_path):
    start_us = 1533151603512404
    stamps = [start_us, start_us + 83_333, start_us + 600_000_000, start_us + 600_083_333]  # next scene 10 min later
    for stamp in stamps:
        write_image(tmp_path / "sweeps" / "CAM_FRONT" / nuscenes_name("CAM_FRONT", stamp), 60)
    frames = list(open_source(tmp_path).frames())
    after_gap = 83_333_000 + TWELVE_HZ_NS
    assert [frame.stamp_ns for frame in frames] == [0, 83_333_000, after_gap, after_gap + 83_333_000]


def test_nuscenes_folder_with_renamed_files_names_the_file(tmp_path):
    write_image(tmp_path / "samples" / "CAM_FRONT" / nuscenes_name("CAM_FRONT", 1533151603512404), 1)
    renamed = tmp_path / "samples" / "CAM_FRONT" / "front_0002.jpg"
    write_image(renamed, 2)
    with pytest.raises(SourceError) as err:
        open_source(tmp_path)
    assert str(err.value).startswith(f"{renamed}: no capture time in the name")
    assert "--cameras N --fps F" in str(err.value) and "\n" not in str(err.value)


def test_unknown_nuscenes_camera_lists_the_cameras(tmp_path):
    write_image(tmp_path / "samples" / "CAM_FRONT" / nuscenes_name("CAM_FRONT", 1533151603512404), 1)
    with pytest.raises(SourceError, match="no camera CAM_BACK; choose from CAM_FRONT"):
        open_source(tmp_path, cameras=["CAM_BACK"])


@pytest.mark.parametrize("layout", ["empty", "empty_cameras"])
def test_folder_without_images_is_refused(layout, tmp_path):
    if layout == "empty_cameras":
        (tmp_path / "samples" / "CAM_FRONT").mkdir(parents=True)
    with pytest.raises(SourceError) as err:
        open_source(tmp_path, camera_count=1, fps=12) if layout == "empty" else open_source(tmp_path)
    assert str(err.value).startswith(f"{tmp_path}") and "no image" in str(err.value)


def test_plain_folder_needs_a_clock(tmp_path):
    write_image(tmp_path / "a.png", 1)
    with pytest.raises(SourceError, match="has no clock; give --cameras N --fps F"):
        open_source(tmp_path)
    with pytest.raises(SourceError, match="needs both --cameras N and --fps F"):
        open_source(tmp_path, fps=12)


@pytest.mark.parametrize(
    ("options", "refused"),
    [({"topics": ["/camera"]}, "--topics"), ({"camera_count": 2, "fps": 12}, "--cameras N/--fps F")],
)
def test_options_that_do_not_apply_are_refused(options, refused):
    with pytest.raises(SourceError, match=f"the embedded frames: {refused} do not apply"):
        open_source(**options)


def test_missing_path_is_refused(tmp_path):
    with pytest.raises(SourceError, match="no such file or folder"):
        open_source(tmp_path / "nope")


def test_corrupt_image_file_raises_frame_decode_error_not_at_open(tmp_path):
    write_image(tmp_path / "a.png", 1)
    (tmp_path / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    frames = list(open_source(tmp_path, camera_count=1, fps=12, loop=False).frames())
    assert frames[0].decode().shape == (9, 16, 3)
    with pytest.raises(FrameDecodeError, match="b.png"):
        frames[1].decode()


def test_each_replay_starts_again_at_zero_and_nonpositive_durations_are_refused(tmp_path):
    write_image(tmp_path / "a.png", 1)
    streams = open_source(tmp_path, camera_count=1, fps=12, duration_s=0.25)
    first = [frame.stamp_ns for frame in streams.frames()]
    assert first == [frame.stamp_ns for frame in streams.frames()] == [0, at_12_hz(1), at_12_hz(2)]
    with pytest.raises(SourceError, match="duration must be positive"):
        streams.limited(0)


def test_with_cameras_copies_the_source_cameras_in_turn():
    streams = open_source(duration_s=0.1).with_cameras(5)
    assert streams.cameras == STUDY_CAMERAS + ("CAM_FRONT~1", "CAM_FRONT_LEFT~1")
    frames = list(streams.frames())
    first = {frame.camera: frame.stamp_ns for frame in frames if frame.index == 0}
    assert first["CAM_FRONT~1"] == first["CAM_FRONT"] and first["CAM_FRONT_LEFT~1"] == 0
    assert len(frames) == 5 * 2  # 100 ms at 12 Hz: two frames per camera
    assert open_source(duration_s=0.1).with_cameras(2).cameras == STUDY_CAMERAS[:2]


def test_scaled_rate_compresses_the_clock(tmp_path):
    write_image(tmp_path / "a.png", 1)
    write_image(tmp_path / "b.png", 2)
    streams = open_source(tmp_path, camera_count=2, fps=10, stagger=True, duration_s=0.3).scaled_rate(2.0)
    assert streams.rates_hz == {"cam0": 20.0, "cam1": 20.0}
    assert [(frame.camera, frame.stamp_ns) for frame in streams.frames()][:5] == [
        ("cam0", 0), ("cam1", 25_000_000), ("cam0", 50_000_000), ("cam1", 75_000_000), ("cam0", 100_000_000)
    ]
    with pytest.raises(SourceError, match="rate factor must be positive"):
        streams.scaled_rate(0)


def test_looped_camera_that_starts_late_stays_in_order_across_the_seam(tmp_path):
    """CAM_BACK's pass ends (533 ms) after the next pass begins (500 ms): the passes interleave."""
    start_us = 1533151603512404
    for number in range(6):
        write_image(tmp_path / "sweeps" / "CAM_FRONT" / nuscenes_name("CAM_FRONT", start_us + number * 83_333), 1)
    for offset_us in (450_000, 533_333):
        write_image(tmp_path / "sweeps" / "CAM_BACK" / nuscenes_name("CAM_BACK", start_us + offset_us), 2)
    streams = open_source(tmp_path, duration_s=1.2, loop=True)
    period = streams.loop_period_ns
    assert period == pytest.approx(6 * 83_333_000)
    frames = list(streams.frames())
    stamps = [frame.stamp_ns for frame in frames]
    assert stamps == sorted(stamps)
    back = [frame.stamp_ns for frame in frames if frame.camera == "CAM_BACK"]
    assert back == [450_000_000, 533_333_000, round(period) + 450_000_000, round(period) + 533_333_000]
    front = [frame.stamp_ns for frame in frames if frame.camera == "CAM_FRONT"]
    assert front[:8] == [number * 83_333_000 for number in range(6)] + [round(period), round(period) + 83_333_000]
