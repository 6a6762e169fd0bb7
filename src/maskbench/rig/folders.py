"""Camera streams from image files: a nuScenes-style folder, any image folder, the embedded frames.

- nuScenes (``samples/CAM_*/`` and ``sweeps/CAM_*/``): each camera at the capture times in its
  file names (``...__CAM_FRONT__1533151603512404.jpg``: microseconds). Keyframes (``samples``) and
  sweeps together are the camera's 12 Hz stream. Gaps over :data:`MAX_GAP_NS` on the merged clock
  (the next scene or log, minutes or days later) are closed to one frame interval.
- Any image folder, as ``camera_count`` cameras at ``fps``: each camera cycles through all the
  images (camera k starting at the k-th, so simultaneous frames differ), and all cameras fire
  together (``stagger=False``, a hardware-triggered rig and the batch's best case) or evenly spread
  over the frame interval (``stagger=True``).
- The default: the embedded nuScenes frames as the study's three front cameras at 12 Hz, each
  cycling its one frame at its recorded phase (the cameras fire about 8 ms apart as the lidar
  sweeps past them).

Files are found with :func:`maskbench.data.sources.find_images` and decoded with
:func:`maskbench.data.images.load_image`, as every other maskbench stage reads them.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from maskbench.data.images import load_image
from maskbench.data.sources import STUDY_CAMERAS, ImageRef, embedded_nuscenes, find_images, is_nuscenes_folder
from maskbench.utils.errors import ImageError, MaskbenchError

from .camera_streams import (
    NS_PER_S,
    CameraStreams,
    FrameDecodeError,
    PassReader,
    SourceError,
    SourceKind,
    Track,
    merged_pass,
)

NUSCENES_CAMERA_HZ = 12.0  # nuScenes' camera rate, for a camera with one frame (no interval to measure)
MAX_GAP_NS = NS_PER_S  # longer than any frame interval, even of the 2 Hz keyframes alone
_STAMP_IN_NAME = re.compile(r"__(\d+)$")  # the file name's stem ends in __<microseconds>


def is_nuscenes_tree(path: Path) -> bool:
    """``path`` (or its ``samples/`` or ``sweeps/``) holds ``CAM_*`` folders."""
    return is_nuscenes_folder(path) or is_nuscenes_folder(path / "sweeps")


def open_nuscenes(path: Path | str, cameras: Sequence[str] | None = None) -> CameraStreams:
    """The cameras of a nuScenes-style folder (``cameras``: names, case-insensitive; None: all),
    one pass at the file names' stamps."""
    path = Path(path)
    files = _nuscenes_files(path, cameras)
    return CameraStreams(SourceKind.NUSCENES, f"nuscenes {path}", *_nuscenes_tracks(files))


def open_embedded() -> CameraStreams:
    """The study's three front cameras from the embedded frames, cycling at 12 Hz (looped: cut it
    with :meth:`CameraStreams.limited`)."""
    path = embedded_nuscenes()
    files = _nuscenes_files(path, STUDY_CAMERAS)
    by_camera = {camera: files[camera] for camera in STUDY_CAMERAS}  # the study's order
    return CameraStreams(SourceKind.EMBEDDED, f"embedded nuScenes {path}", *_nuscenes_tracks(by_camera), loop=True)


def open_image_folder(path: Path | str, camera_count: int, fps: float, stagger: bool = False) -> CameraStreams:
    """Every image under ``path`` as ``camera_count`` cameras at ``fps``, cycling (looped)."""
    path = Path(path)
    if camera_count < 1:
        raise SourceError(f"{path}: --cameras must be at least 1, not {camera_count}")
    if not fps > 0:
        raise SourceError(f"{path}: --fps must be positive, not {fps}")
    try:
        files = [ref.path for ref in find_images(path)]
    except MaskbenchError as err:
        raise SourceError(str(err)) from None
    interval = NS_PER_S / fps
    tracks, per_track = [], []
    for camera in range(camera_count):
        phase = round(camera * interval / camera_count) if stagger else 0
        turn = files[camera % len(files) :] + files[: camera % len(files)]
        per_track.append(_frames([(phase + round(number * interval), file) for number, file in enumerate(turn)]))
        tracks.append(Track(f"cam{camera}", fps, len(turn), phase))
    layout = "staggered" if stagger else "simultaneous"
    origin = f"image folder {path} as {camera_count} camera(s) at {fps:g} Hz, {layout}"
    return CameraStreams(SourceKind.IMAGE_FOLDER, origin, tuple(tracks), merged_pass(per_track), loop=True)


def _nuscenes_files(path: Path, cameras: Sequence[str] | None) -> dict[str, list[tuple[int, Path]]]:
    """Camera -> its (stamp ns, file) sorted by stamp, from ``samples/`` and ``sweeps/`` (or the
    ``CAM_*`` folders of ``path`` itself)."""
    parts = [part for part in (path / "samples", path / "sweeps") if is_nuscenes_folder(part)]
    if not parts and is_nuscenes_folder(path):
        parts = [path]
    if not parts:
        raise SourceError(f"{path}: no CAM_* folders in it, its samples/ or its sweeps/; point at a nuScenes folder")
    refs: list[ImageRef] = []
    for part in parts:
        try:
            refs += find_images(part)
        except MaskbenchError:  # a part without images: the others may have them
            continue
    if not refs:
        raise SourceError(f"{path}: its CAM_* folders hold no images; point at a nuScenes folder with images")
    found = sorted({str(ref.camera) for ref in refs})
    chosen = _choose_cameras(path, found, cameras)
    files: dict[str, list[tuple[int, Path]]] = {camera: [] for camera in chosen}
    for ref in refs:
        if ref.camera in files:
            files[ref.camera].append((_stamp_from_name(ref.path), ref.path))
    return {camera: sorted(stamped) for camera, stamped in files.items()}


def _choose_cameras(path: Path, found: list[str], cameras: Sequence[str] | None) -> list[str]:
    if cameras is None:
        return found
    by_upper = {camera.upper(): camera for camera in found}
    unknown = [camera for camera in cameras if camera.upper() not in by_upper]
    if unknown or not cameras:
        raise SourceError(f"{path}: no camera {', '.join(unknown) or '(none given)'}; choose from {', '.join(found)}")
    return list(dict.fromkeys(by_upper[camera.upper()] for camera in cameras))


def _stamp_from_name(file: Path) -> int:
    match = _STAMP_IN_NAME.search(file.stem)
    if match is None:
        raise SourceError(
            f"{file}: no capture time in the name (nuScenes names end in __<microseconds>, e.g. "
            "n015-...__CAM_FRONT__1533151603512404.jpg); restore the names, or replay the folder as "
            "an image folder with --cameras N --fps F"
        )
    return int(match.group(1)) * 1000


def _nuscenes_tracks(files: dict[str, list[tuple[int, Path]]]) -> tuple[tuple[Track, ...], PassReader]:
    files = _close_gaps(files)
    tracks = []
    for camera, stamped in files.items():
        intervals = [later - earlier for (earlier, _), (later, _) in zip(stamped, stamped[1:]) if later > earlier]
        rate_hz = NS_PER_S / statistics.median(intervals) if intervals else NUSCENES_CAMERA_HZ
        tracks.append(Track(camera, rate_hz, len(stamped), stamped[0][0]))
    return tuple(tracks), merged_pass([_frames(stamped) for stamped in files.values()])


def _close_gaps(files: dict[str, list[tuple[int, Path]]]) -> dict[str, list[tuple[int, Path]]]:
    """Shift everything after a gap longer than :data:`MAX_GAP_NS` (on all cameras' merged
    clock) back to one nuScenes frame interval after the frame before it."""
    stamps = sorted({stamp for stamped in files.values() for stamp, _ in stamped})
    interval = round(NS_PER_S / NUSCENES_CAMERA_HZ)
    shift_after: list[tuple[int, int]] = []  # (first stamp after a gap, total shift from there on)
    total = 0
    for earlier, later in zip(stamps, stamps[1:]):
        if later - earlier > MAX_GAP_NS:
            total += later - earlier - interval
            shift_after.append((later, total))
    if not shift_after:
        return files

    def shifted(stamp: int) -> int:
        applied = [shift for start, shift in shift_after if stamp >= start]
        return stamp - (applied[-1] if applied else 0)

    return {camera: [(shifted(stamp), file) for stamp, file in stamped] for camera, stamped in files.items()}


def _frames(stamped: list[tuple[int, Path]]) -> list[tuple[int, str, Callable[[], np.ndarray]]]:
    return [(stamp, str(file), _file_decoder(file)) for stamp, file in stamped]


def _file_decoder(file: Path) -> Callable[[], np.ndarray]:
    def decode() -> np.ndarray:
        try:
            return load_image(file)
        except ImageError as err:
            raise FrameDecodeError(str(err)) from None

    return decode
