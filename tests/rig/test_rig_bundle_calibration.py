"""The rig's bundle calibrates random weights on a frame of every camera, not on the first frame
alone (on which alone they do a trained model's work on that camera only)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pytest

from maskbench.rig.camera_streams import FrameDecodeError
from maskbench.rig.cli import first_frame_of_each_camera
from maskbench.utils.errors import MaskbenchError


@dataclass
class _Frame:
    camera: str
    value: int | None  # None: a corrupt frame
    stamp_ns: int = 0

    def decode(self) -> np.ndarray:
        if self.value is None:
            raise FrameDecodeError(f"{self.camera}: corrupt")
        return np.full((2, 2, 3), self.value, np.uint8)


def _streams(frames: list[_Frame], loop_period_ns: int = 10**9) -> SimpleNamespace:
    cameras = tuple(dict.fromkeys(frame.camera for frame in frames))
    return SimpleNamespace(cameras=cameras, origin="test", frames=lambda: iter(frames), loop_period_ns=loop_period_ns)


def test_one_frame_per_camera_in_arrival_order_skipping_corrupt_ones():
    frames = [_Frame("left", 1), _Frame("front", None), _Frame("left", 2), _Frame("front", 3), _Frame("right", 4),
              _Frame("front", 5)]
    images = first_frame_of_each_camera(_streams(frames))
    assert [int(image[0, 0, 0]) for image in images] == [1, 3, 4]


def test_a_cycling_source_whose_camera_never_decodes_stops_after_one_pass():
    def cycling():
        for number in itertools.count():
            yield _Frame("left", 1, stamp_ns=number * 100)
            yield _Frame("front", None, stamp_ns=number * 100 + 50)

    streams = SimpleNamespace(cameras=("left", "front"), origin="test", frames=cycling, loop_period_ns=1_000)
    assert [int(image[0, 0, 0]) for image in first_frame_of_each_camera(streams)] == [1]


def test_no_decodable_frame_is_one_line():
    with pytest.raises(MaskbenchError, match="test: no frame decodes; check the source"):
        first_frame_of_each_camera(_streams([_Frame("left", None), _Frame("left", None)]))


def test_the_bundle_calibrates_on_the_frames_given(monkeypatch, tmp_path):
    """build_choice_bundle hands every calibration frame to the random-weight calibration (the
    model build is stopped there: this checks the wiring, the replay test builds a real one)."""
    import maskbench.export.calibration as calibration
    from maskbench.data.sources import embedded_nuscenes, find_images
    from maskbench.distributed.shipping import ModelChoice, build_choice_bundle
    from maskbench.utils.names import ResizeMode

    class Stop(Exception):
        pass

    def calibrated(model, images, mode, input_size, seed):
        raise Stop(model, [int(image[0, 0, 0]) for image in images], mode)

    monkeypatch.setattr(calibration, "calibrated_random_model", calibrated)
    frame = str(next(iter(find_images(embedded_nuscenes(), ["CAM_FRONT"]))).path)
    choice = ModelChoice("rtmdet-ins-t", "random", "openvino", "fp32", ResizeMode.STRETCH, None, 0)
    images = [np.full((9, 16, 3), value, np.uint8) for value in (1, 2, 3)]
    with pytest.raises(Stop) as stopped:
        build_choice_bundle(tmp_path / "bundle", choice, [frame], 1, calibration_images=images)
    assert stopped.value.args == ("rtmdet-ins-t", [1, 2, 3], ResizeMode.STRETCH)
