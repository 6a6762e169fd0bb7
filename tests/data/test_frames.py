"""The one frame type: a file's frame, read once; a Ray row without pixels."""

import pytest

from maskbench.data.frames import Frame, load_frames


def test_a_frame_reads_its_pixels_once_and_is_a_ray_row_without_them():
    front = load_frames(cameras=["CAM_FRONT"])[0]
    assert front.camera == "CAM_FRONT" and front.name.endswith(".jpg") and front.image.ndim == 3
    row = Frame(front.path, None, 7, width=3, height=2).row()
    assert row == {"image_id": 7, "path": front.path, "file_name": front.path, "camera": "", "width": 3, "height": 2}


def test_a_frame_not_read_says_so():
    with pytest.raises(ValueError, match="not decoded"):
        _ = Frame("a.jpg").image
