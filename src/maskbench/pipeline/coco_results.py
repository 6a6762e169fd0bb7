"""Write predictions as COCO files that pycocotools and MMDetection's tools read unchanged.

``predict`` writes two files into its output folder:

- ``results.json``: the standard COCO *results* list (one dict per instance, masks as
  compressed RLE), loadable with ``COCO(gt).loadRes("results.json")`` for evaluation;
- ``images.json``: a COCO-style dataset of the images (ids, file names, sizes, nuScenes
  camera, and the error string of any image that failed) with the 80 categories and no
  annotations. ``COCO("images.json").loadRes("results.json")`` therefore browses the
  predictions with pycocotools even where no ground truth exists.

Every file is written atomically (temporary file, then rename), so a crash or Ctrl-C never
leaves a half-written JSON that a later ``evaluate`` would choke on.

Notes for evaluation with pycocotools (both are MMDetection's practice too):

- ``loadRes`` takes a ``str`` path or a list, not a ``pathlib.Path``; it mutates the dicts of
  a list it is given (pass copies), and it fails on an empty list.
- With a ``bbox`` present, ``loadRes`` takes each instance's area from the box, which shifts
  mask AP for small/medium/large. For mask ("segm") evaluation pass :func:`for_segm_eval`'s
  copies, which have no ``bbox``, so the area comes from the mask.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils

from maskbench.data.coco_classes import COCO_CATEGORY_IDS, COCO_CLASSES, label_to_category_id
from maskbench.pipeline.detections import Detections
from maskbench.utils.files import atomic_open

RESULTS_FILE = "results.json"
IMAGES_FILE = "images.json"


def detections_to_coco(dets: Detections, image_id: int) -> list[dict]:
    """One COCO results entry per instance of ``dets`` (all of them: no score threshold).

    Each entry: ``image_id``, ``category_id`` (COCO's sparse id), ``bbox`` ``[x, y, w, h]``
    (2 decimals), ``score`` (5 decimals), ``segmentation`` (RLE ``{"size": [h, w],
    "counts": str}``) and ``category_name`` for people reading the file (COCO tools ignore
    extra keys). Rounding keeps files small without changing any COCO metric.
    """
    windows = dets.windows
    if not (len(dets) == len(dets.boxes) == len(dets.labels) == len(windows)):
        raise ValueError(
            f"Detections arrays disagree in length (scores {len(dets)}, boxes {len(dets.boxes)}, "
            f"labels {len(dets.labels)}, masks {len(windows)}); fix the code that built them"
        )
    entries = []
    for box, score, label, plane in zip(dets.boxes, dets.scores, dets.labels, windows.planes()):
        x1, y1, x2, y2 = (float(v) for v in box)
        entries.append(
            {
                "image_id": int(image_id),
                "category_id": label_to_category_id(int(label)),
                "category_name": COCO_CLASSES[int(label)],
                "bbox": [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)],
                "score": round(float(score), 5),
                "segmentation": mask_to_rle(plane),
            }
        )
    return entries


def mask_to_rle(mask: np.ndarray) -> dict:
    """COCO compressed RLE of an HxW boolean mask, with ``counts`` as str so it is JSON."""
    rle = mask_utils.encode(np.asfortranarray(mask, dtype=np.uint8))  # pycocotools needs Fortran order
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def for_segm_eval(entries: Iterable[Mapping]) -> list[dict]:
    """Copies of ``entries`` without ``bbox``, so ``loadRes`` takes areas from the masks."""
    return [{key: value for key, value in entry.items() if key != "bbox"} for entry in entries]


@dataclass(frozen=True)
class ImageRecord:
    """One input image as listed in ``images.json``; ``error`` is set when it failed.

    ``file_name`` is whatever identifies the image to the reader (typically its path relative
    to the input folder); ``width``/``height`` are None when the image could not be read.
    """

    image_id: int
    file_name: str
    width: int | None
    height: int | None
    camera: str | None = None
    error: str | None = None

    def to_coco(self) -> dict:
        entry = {"id": self.image_id, "file_name": self.file_name, "width": self.width, "height": self.height}
        if self.camera is not None:
            entry["camera"] = self.camera
        if self.error is not None:
            entry["error"] = self.error
        return entry


def write_predictions(
    out_dir: Path | str,
    images: Sequence[ImageRecord],
    results: Sequence[Mapping],
    info: Mapping[str, object] | None = None,
) -> tuple[Path, Path]:
    """Write ``results.json`` and ``images.json`` into ``out_dir``; return their paths.

    ``info`` (e.g. model name, weights file and hash, maskbench version) goes into
    ``images.json``'s COCO ``info`` block, so a results folder says what produced it.
    """
    out_dir = Path(out_dir)
    ids = [record.image_id for record in images]
    if len(set(ids)) != len(ids):
        raise ValueError("image ids in images.json must be unique; number the images once, in order")
    unknown = {entry["image_id"] for entry in results} - set(ids)
    if unknown:
        raise ValueError(
            f"results refer to image ids {sorted(unknown)[:5]} missing from the image list; list every image"
        )
    results_path = write_coco_results(out_dir / RESULTS_FILE, results)
    images_path = write_json_atomic(out_dir / IMAGES_FILE, images_dataset(images, info), indent=1)
    return results_path, images_path


def images_dataset(images: Sequence[ImageRecord], info: Mapping[str, object] | None = None) -> dict:
    """``images.json``'s content: the images, the 80 categories, no annotations (also written by
    :mod:`maskbench.distributed.shards`, which streams ``results.json`` itself)."""
    return {
        "info": dict(info or {}),
        "images": [record.to_coco() for record in images],
        "categories": [{"id": cid, "name": name} for cid, name in zip(COCO_CATEGORY_IDS, COCO_CLASSES)],
        "annotations": [],
    }


def write_coco_results(path: Path | str, entries: Sequence[Mapping]) -> Path:
    """Write a COCO results list to ``path`` atomically (compact: RLE strings are long)."""
    return write_json_atomic(path, list(entries))


def write_json_atomic(path: Path | str, obj: object, indent: int | None = None) -> Path:
    """Write ``obj`` as JSON to ``path`` so readers see the old file or the whole new one
    (:func:`maskbench.utils.files.atomic_open`). NaN or infinity raise ValueError: JSON has no such
    values and pycocotools' reader would reject them later, far from the cause.
    """
    with atomic_open(path) as file:
        json.dump(obj, file, indent=indent, allow_nan=False)
    return Path(path)
