"""The frames of a run, numbered by the driver exactly as single-process ``predict`` and
``evaluate`` number them, so Ray's results compare entry for entry with theirs."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

from ..data.frames import Frame
from ..data.sources import find_images


def predict_frames(images: Path, cameras: Sequence[str] | None = None) -> list[Frame]:
    """An image file, folder or nuScenes folder as ``predict`` reads it: ids 1..N in its order."""
    return [Frame(str(ref.path), ref.camera, image_id, str(ref.path))
            for image_id, ref in enumerate(find_images(images, cameras), 1)]


def coco_frames(dataset: dict, images: Path, max_images: int | None = None) -> list[Frame]:
    """A COCO dataset's images as ``evaluate`` reads them: by id, the first ``max_images``."""
    entries = sorted(dataset["images"], key=lambda image: image["id"])[:max_images]
    return [Frame(str(images / e["file_name"]), None, int(e["id"]), e["file_name"], int(e.get("width") or 0),
                  int(e.get("height") or 0)) for e in entries]


def frames_digest(frames: Sequence[Frame]) -> str:
    """Identity of the frame list (ids and paths): a resumed run must be over the same frames."""
    text = json.dumps([(frame.image_id, frame.path) for frame in frames])
    return hashlib.sha256(text.encode()).hexdigest()[:16]
