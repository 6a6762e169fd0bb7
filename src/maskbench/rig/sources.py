"""One entry point from what the user names (``maskbench rig [SOURCE] ...``) to camera streams.

- nothing: the embedded nuScenes frames as the study's three front cameras at 12 Hz, cycling;
- a ROS bag (``.bag``, a rosbag2 folder, ``.mcap``, ``.db3``, a folder of split ``.bag`` files): its image
  topics (``topics``);
- a folder with ``camera_count`` and ``fps``: its images as that many cameras on that clock;
- a nuScenes-style folder: its cameras (``cameras``) at the stamps in the file names.

Every refusal is a :class:`~maskbench.rig.camera_streams.SourceError` (one line), raised here,
before any model is loaded. Bags and nuScenes folders play once unless ``loop``; the image-folder
and embedded sources cycle unless ``loop=False``; ``duration_s`` cuts any of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .bags import is_bag, open_bag
from .camera_streams import CameraStreams, SourceError
from .folders import is_nuscenes_tree, open_embedded, open_image_folder, open_nuscenes


def open_source(
    path: Path | str | None = None,
    *,
    topics: Sequence[str] | None = None,
    cameras: Sequence[str] | None = None,
    camera_count: int | None = None,
    fps: float | None = None,
    stagger: bool = False,
    duration_s: float | None = None,
    loop: bool | None = None,
) -> CameraStreams:
    """The streams to replay; see the module docstring. ``loop=None`` keeps the source's own
    default (cycle for the embedded and image-folder sources, one pass otherwise)."""
    streams = _open(path, topics, cameras, camera_count, fps, stagger)
    if duration_s is None and loop is None:
        return streams
    return streams.limited(duration_s, loop=streams.loop if loop is None else loop)


def _open(
    path: Path | str | None,
    topics: Sequence[str] | None,
    cameras: Sequence[str] | None,
    camera_count: int | None,
    fps: float | None,
    stagger: bool,
) -> CameraStreams:
    clock = camera_count is not None or fps is not None
    if path is None:
        _refuse_options("the embedded frames", topics=topics, cameras=cameras, clock=clock)
        return open_embedded()
    path = Path(path)
    if not path.exists():
        raise SourceError(f"{path}: no such file or folder; check the path")
    if is_bag(path):
        _refuse_options(f"{path} (a ROS bag)", cameras=cameras, clock=clock)
        return open_bag(path, topics)
    if not path.is_dir():
        raise SourceError(
            f"{path}: not a ROS bag (.bag, .mcap, .db3, a rosbag2 folder or a folder of .bag files) "
            "or a folder of images"
        )
    if clock:
        _refuse_options(f"{path} (an image folder)", topics=topics, cameras=cameras)
        if camera_count is None or fps is None:
            raise SourceError(f"{path}: an image folder needs both --cameras N and --fps F")
        return open_image_folder(path, camera_count, fps, stagger)
    if is_nuscenes_tree(path):
        _refuse_options(f"{path} (a nuScenes folder)", topics=topics)
        return open_nuscenes(path, cameras)
    raise SourceError(
        f"{path}: a folder of images without nuScenes CAM_* folders has no clock; give --cameras N --fps F"
    )


def _refuse_options(
    what: str,
    *,
    topics: Sequence[str] | None = None,
    cameras: Sequence[str] | None = None,
    clock: bool = False,
) -> None:
    """Options that do not apply to this kind of source are refused, not silently ignored."""
    given = [name for name, value in (("--topics", topics), ("camera names", cameras)) if value is not None]
    if clock:
        given.append("--cameras N/--fps F")
    if given:
        raise SourceError(f"{what}: {', '.join(given)} do not apply to this source; drop them")
