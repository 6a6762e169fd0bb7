"""Read back the detections a benchmark worker saved, so the report can draw them later.

The worker writes one JSON per record (``record.detections_file``, relative to the results
folder): ``{"frames": [{"path", "camera", "width", "height", "results": [COCO result
dicts with compressed RLE masks]}]}``. This turns each frame back into
:class:`~maskbench.pipeline.detections.Detections`, the type :func:`~maskbench.report.overlay.draw_overlay`
takes, so overlays are drawn after the timing and never slow it down.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils

from maskbench.data.coco_classes import category_id_to_label
from maskbench.pipeline.detections import Detections
from maskbench.utils.errors import MaskbenchError


@dataclass
class FrameDetections:
    path: str  # the image as the worker named it (absolute, or relative to the results folder)
    camera: str | None
    width: int
    height: int
    detections: Detections


def load_detections_file(path: Path | str) -> list[FrameDetections]:
    """Every frame of a worker's detections file, masks decoded at the frame's size."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return [_frame(frame) for frame in data["frames"]]
    except FileNotFoundError:
        raise MaskbenchError(f"{path}: detections file missing; rerun the benchmark for this model") from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise MaskbenchError(f"{path}: not a maskbench detections file ({type(err).__name__}: {err})") from None


def _frame(frame: dict) -> FrameDetections:
    width, height = int(frame["width"]), int(frame["height"])
    return FrameDetections(str(frame["path"]), frame.get("camera"), width, height,
                           results_to_detections(frame["results"], height, width))


def results_to_detections(results: list[dict], height: int, width: int) -> Detections:
    """COCO result dicts (xywh boxes, COCO category ids, RLE masks) as Detections, best first."""
    results = sorted(results, key=lambda entry: -float(entry["score"]))
    if not results:
        return Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64),
                          np.zeros((0, height, width), bool))
    for entry in results:
        if list(entry["segmentation"]["size"]) != [height, width]:
            raise ValueError(f"a mask is {entry['segmentation']['size']} but the frame is {[height, width]}")
    boxes = np.array([entry["bbox"] for entry in results], np.float32)
    boxes[:, 2:] += boxes[:, :2]  # xywh -> x1y1x2y2
    with warnings.catch_warnings():  # pycocotools' own numpy-2 DeprecationWarning, harmless
        warnings.simplefilter("ignore", DeprecationWarning)
        masks = mask_utils.decode([entry["segmentation"] for entry in results])  # (H, W, N) uint8
    return Detections(
        boxes=boxes,
        scores=np.array([entry["score"] for entry in results], np.float32),
        labels=np.array([category_id_to_label(int(entry["category_id"])) for entry in results], np.int64),
        masks=np.ascontiguousarray(masks.transpose(2, 0, 1)).astype(bool),
    )
