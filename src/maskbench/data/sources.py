"""Turn what the user points at (a file, a folder, a nuScenes tree) into an ordered image list.

The order is deterministic (sorted) so that image ids, result files and benchmark runs are
the same on every machine. nuScenes trees get their camera recorded, so results can be
broken down per camera and the study cameras chosen without knowing the folder layout.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from maskbench.utils.errors import MaskbenchError

# The forward-facing cameras a car's perception mostly relies on: the default study set.
STUDY_CAMERAS = ("CAM_FRONT", "CAM_FRONT_LEFT", "CAM_FRONT_RIGHT")

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})

_CAMERA_PREFIX = "CAM_"


@dataclass(frozen=True)
class ImageRef:
    """One image to process; ``camera`` is its nuScenes camera, or None outside nuScenes."""

    path: Path
    camera: str | None


def find_images(path: Path | str, cameras: Sequence[str] | None = None) -> list[ImageRef]:
    """The images under ``path``, sorted, as :class:`ImageRef` s.

    - a file: just it (its format is checked later, when it is loaded);
    - a nuScenes-style folder (it, or its ``samples/`` subfolder, holds ``CAM_*`` folders):
      the images of ``cameras`` (all cameras when None; names are case-insensitive), sorted
      by camera then file name;
    - any other folder: every image file below it (by suffix, case-insensitive), sorted by
      relative path. Hidden files (``.*``, e.g. macOS ``._x.jpg`` copies) are skipped.

    Raises MaskbenchError (one line) for a missing path, a folder without images, a camera
    that is not there, or a camera filter on anything but a nuScenes folder.
    """
    path = Path(path)
    if not path.exists():
        raise MaskbenchError(f"{path}: no such file or folder; check the path")
    if path.is_file():
        if cameras is not None:
            raise MaskbenchError(f"{path}: a camera filter needs a nuScenes folder, not a file; drop the camera option")
        return [ImageRef(path, _camera_of_file(path))]
    camera_root = _nuscenes_camera_root(path)
    if camera_root is not None:
        refs = _nuscenes_images(camera_root, cameras)
    elif cameras is not None:
        raise MaskbenchError(
            f"{path}: a camera filter needs a nuScenes folder (with CAM_* subfolders, or samples/CAM_*); "
            "drop the camera option"
        )
    else:
        refs = [ImageRef(file, None) for file in _image_files(path, recursive=True)]
    if not refs:
        suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
        raise MaskbenchError(f"{path}: no image files ({suffixes}) found; point at a folder of images")
    return refs


def embedded_nuscenes() -> Path:
    """The six nuScenes frames shipped in the package (1600x900, ``samples/CAM_*/``).

    Found through importlib.resources so it works from an installed wheel, not just a checkout.
    """
    folder = resources.files("maskbench").joinpath("assets", "nuscenes")
    path = Path(str(folder))
    if not (path / "samples").is_dir():
        raise MaskbenchError(f"{path}: embedded nuScenes frames are missing; reinstall maskbench")
    return path


def is_nuscenes_folder(path: Path | str) -> bool:
    """A folder laid out like nuScenes (``CAM_*`` folders in it or in its ``samples/``)."""
    path = Path(path)
    return path.is_dir() and _nuscenes_camera_root(path) is not None


def _nuscenes_camera_root(folder: Path) -> Path | None:
    """The folder holding the ``CAM_*`` folders: ``folder`` or ``folder/samples``; else None."""
    for candidate in (folder, folder / "samples"):
        if candidate.is_dir() and _camera_folders(candidate):
            return candidate
    return None


def _camera_folders(folder: Path) -> dict[str, Path]:
    return {
        child.name: child
        for child in folder.iterdir()
        if child.is_dir() and child.name.upper().startswith(_CAMERA_PREFIX)
    }


def _nuscenes_images(camera_root: Path, cameras: Sequence[str] | None) -> list[ImageRef]:
    available = _camera_folders(camera_root)
    by_upper = {name.upper(): name for name in available}
    if cameras is None:
        chosen = sorted(available)
    elif len(cameras) == 0:
        raise MaskbenchError(
            f"{camera_root}: the camera filter is empty; name at least one of {', '.join(sorted(available))}"
        )
    else:
        unknown = [camera for camera in cameras if camera.upper() not in by_upper]
        if unknown:
            raise MaskbenchError(
                f"{camera_root}: no camera {', '.join(unknown)}; choose from {', '.join(sorted(available))}"
            )
        chosen = sorted({by_upper[camera.upper()] for camera in cameras})
    return [
        ImageRef(file, camera) for camera in chosen for file in _image_files(available[camera], recursive=False)
    ]


def _image_files(folder: Path, recursive: bool) -> list[Path]:
    """Image files in ``folder`` (and below it if ``recursive``), sorted by relative path."""
    candidates = folder.rglob("*") if recursive else folder.iterdir()
    files = [
        file
        for file in candidates
        if file.suffix.lower() in IMAGE_SUFFIXES
        and file.is_file()
        and not any(part.startswith(".") for part in file.relative_to(folder).parts)
    ]
    return sorted(files, key=lambda file: file.relative_to(folder).parts)


def _camera_of_file(file: Path) -> str | None:
    """A single file's camera, when it sits in a nuScenes ``CAM_*`` folder."""
    parent = file.parent.name
    return parent if parent.upper().startswith(_CAMERA_PREFIX) else None
