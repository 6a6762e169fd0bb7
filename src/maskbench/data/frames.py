"""The one frame type: an input image, where it is and, once decoded, its pixels.

Used by the checks and calibration (decoded embedded frames), the benchmark worker (its job's
frames, decoded once and timed), and the Ray engines (numbered rows of a dataset, decoded on
the worker nodes). The rig's replay has its own lazily decoded :class:`~maskbench.rig.
camera_streams.CameraFrame` (a recorded message, not a file)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .images import load_image
from .sources import embedded_nuscenes, find_images


@dataclass(frozen=True)
class Frame:
    """``path``: the image file (for Ray, readable on every node: shared storage); ``camera``:
    its nuScenes camera (None outside nuScenes); ``image_id``: the run's number for it
    (predict and evaluate number alike; 0: not numbered); ``file_name``: its name in results
    files (default: ``path``); ``width``/``height``: the size an annotation file gives (0: not
    checked); ``decoded``: RGB uint8 pixels once read (:meth:`read`, :attr:`image`)."""

    path: str
    camera: str | None = None
    image_id: int = 0
    file_name: str = ""
    width: int = 0
    height: int = 0
    decoded: np.ndarray | None = field(default=None, compare=False, repr=False)

    @property
    def name(self) -> str:
        """The file's name, as check tables show it."""
        return Path(self.path).name

    @property
    def image(self) -> np.ndarray:
        """The decoded pixels (RGB uint8); a frame not read yet is a programming error."""
        if self.decoded is None:
            raise ValueError(f"{self.path}: frame not decoded; read it first (Frame.read)")
        return self.decoded

    def read(self) -> Frame:
        """This frame with its pixels (raises :class:`~maskbench.utils.errors.ImageError`)."""
        return replace(self, decoded=load_image(Path(self.path)))

    def row(self) -> dict:
        """A Ray dataset row: no pixels, and ``camera`` "" outside nuScenes (Arrow columns have one type)."""
        return {"image_id": self.image_id, "path": self.path, "file_name": self.file_name or self.path,
                "camera": self.camera or "", "width": self.width, "height": self.height}


def load_frames(images: Path | str | None = None, cameras: Sequence[str] | None = None) -> list[Frame]:
    """Frames from a file/folder/nuScenes tree (default: the six embedded nuScenes frames), decoded."""
    refs = find_images(images if images is not None else embedded_nuscenes(), cameras)
    return [Frame(str(ref.path), ref.camera).read() for ref in refs]
