"""Frames to check, calibrate or probe on: decoded RGB images with their file name and camera."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .images import load_image
from .sources import embedded_nuscenes, find_images


@dataclass(frozen=True)
class Frame:
    name: str
    camera: str | None
    image: np.ndarray  # RGB uint8


def load_frames(images: Path | str | None = None, cameras: Sequence[str] | None = None) -> list[Frame]:
    """Frames from a file/folder/nuScenes tree (default: the six embedded nuScenes frames)."""
    refs = find_images(images if images is not None else embedded_nuscenes(), cameras)
    return [Frame(ref.path.name, ref.camera, load_image(ref.path)) for ref in refs]
