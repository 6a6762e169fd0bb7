"""find_images: files, plain folders and nuScenes trees, in a stable order, with clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from maskbench.data.sources import STUDY_CAMERAS, ImageRef, embedded_nuscenes, find_images
from maskbench.utils.errors import MaskbenchError


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")  # find_images looks at names only; decoding is load_image's job
    return path


def _nuscenes(root: Path) -> Path:
    """samples/CAM_*/ with two frames per camera, created out of order."""
    for camera in ["CAM_FRONT_RIGHT", "CAM_BACK", "CAM_FRONT"]:
        for name in ["b.jpg", "a.jpg"]:
            _touch(root / "samples" / camera / f"{camera}__{name}")
    _touch(root / "samples" / "CAM_FRONT" / "notes.txt")
    return root


def test_single_file_is_returned_as_is(tmp_path):
    file = _touch(tmp_path / "x.jpg")
    assert find_images(str(file)) == [ImageRef(file, None)]


def test_single_file_in_camera_folder_gets_its_camera(tmp_path):
    file = _touch(tmp_path / "CAM_FRONT" / "x.jpg")
    assert find_images(file) == [ImageRef(file, "CAM_FRONT")]


def test_nuscenes_all_cameras_sorted_by_camera_then_name(tmp_path):
    refs = find_images(_nuscenes(tmp_path))
    assert [(ref.camera, ref.path.name) for ref in refs] == [
        ("CAM_BACK", "CAM_BACK__a.jpg"),
        ("CAM_BACK", "CAM_BACK__b.jpg"),
        ("CAM_FRONT", "CAM_FRONT__a.jpg"),
        ("CAM_FRONT", "CAM_FRONT__b.jpg"),
        ("CAM_FRONT_RIGHT", "CAM_FRONT_RIGHT__a.jpg"),
        ("CAM_FRONT_RIGHT", "CAM_FRONT_RIGHT__b.jpg"),
    ]
    assert all(ref.path.parent.name == ref.camera for ref in refs)


def test_nuscenes_camera_filter_from_root_or_samples(tmp_path):
    _nuscenes(tmp_path)
    for folder in [tmp_path, tmp_path / "samples"]:
        refs = find_images(folder, cameras=["CAM_FRONT_RIGHT", "cam_front"])
        assert [ref.camera for ref in refs] == ["CAM_FRONT", "CAM_FRONT", "CAM_FRONT_RIGHT", "CAM_FRONT_RIGHT"]


def test_unknown_camera_lists_the_available_ones(tmp_path):
    _nuscenes(tmp_path)
    with pytest.raises(MaskbenchError, match=r"no camera CAM_TOP; choose from CAM_BACK, CAM_FRONT, CAM_FRONT_RIGHT$"):
        find_images(tmp_path, cameras=["CAM_FRONT", "CAM_TOP"])


def test_empty_camera_filter_is_an_error(tmp_path):
    _nuscenes(tmp_path)
    with pytest.raises(MaskbenchError, match="camera filter is empty"):
        find_images(tmp_path, cameras=[])


def test_plain_folder_recursive_sorted_image_suffixes_only(tmp_path):
    expected = [
        _touch(tmp_path / "a.PNG"),
        _touch(tmp_path / "b.jpeg"),
        _touch(tmp_path / "sub" / "c.TIFF"),
        _touch(tmp_path / "sub" / "deeper" / "d.webp"),
        _touch(tmp_path / "z.bmp"),
    ]
    _touch(tmp_path / "readme.txt")
    _touch(tmp_path / "._a.jpg")  # macOS resource fork: not an image
    _touch(tmp_path / ".cache" / "e.jpg")
    (tmp_path / "folder.jpg").mkdir()  # a folder with an image suffix is not an image
    refs = find_images(tmp_path)
    assert [ref.path for ref in refs] == expected
    assert all(ref.camera is None for ref in refs)


def test_camera_filter_on_plain_folder_or_file_is_an_error(tmp_path):
    file = _touch(tmp_path / "a.jpg")
    with pytest.raises(MaskbenchError, match="needs a nuScenes folder"):
        find_images(tmp_path, cameras=["CAM_FRONT"])
    with pytest.raises(MaskbenchError, match="needs a nuScenes folder"):
        find_images(file, cameras=["CAM_FRONT"])


def test_missing_path_and_empty_folder(tmp_path):
    with pytest.raises(MaskbenchError, match=r"nowhere: no such file or folder; check the path"):
        find_images(tmp_path / "nowhere")
    _touch(tmp_path / "empty" / "notes.txt")
    with pytest.raises(MaskbenchError, match=r"empty: no image files .*; point at a folder of images"):
        find_images(tmp_path / "empty")


def test_embedded_frames_are_found_and_are_1600x900():
    root = embedded_nuscenes()
    refs = find_images(root)
    assert len(refs) == 6
    assert len({ref.camera for ref in refs}) == 6
    study = find_images(root, cameras=STUDY_CAMERAS)
    assert [ref.camera for ref in study] == sorted(STUDY_CAMERAS)
    with Image.open(study[0].path) as image:
        assert image.size == (1600, 900)
