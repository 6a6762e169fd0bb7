"""Score a COCO results list against an annotation file: box and mask AP, per class.

The numbers are COCOeval's own (``stats`` and the ``precision`` array); nothing here
computes AP. Two backends give them: pycocotools (the reference) and faster-coco-eval (the
same algorithm in C++, several times faster; tests/evaluation check that both give identical
numbers). Crowd regions (``iscrowd=1``) are handled by COCOeval itself: detections matched to
them are ignored, neither true nor false positives.

Mask AP follows MMDetection's practice: the results are loaded *without* their ``bbox`` (see
``report.coco_results.for_segm_eval``) so each instance's area, which decides small/medium/
large, comes from its mask and not from its box.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from maskbench.pipeline.coco_results import for_segm_eval
from maskbench.utils.errors import MaskbenchError
from maskbench.utils.names import (  # the command line reads them from there, without numpy
    BACKENDS,
    FASTER,  # noqa: F401 (kept as coco_eval.FASTER)
    PYCOCOTOOLS,
)

from .entries import ANOTHER_DATASET, triage

# COCOeval.stats, in its order; -1 means "no ground truth in that range" (COCOeval's convention).
STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
IOU_TYPES = {"box": "bbox", "mask": "segm"}


@dataclass
class ApSummary:
    """COCOeval's 12 summary numbers for one IoU type, and AP per class (None: no ground truth)."""

    stats: dict[str, float]
    per_class: dict[str, float | None]

    @property
    def ap(self) -> float:
        return self.stats["AP"]


@dataclass
class CocoMetrics:
    """What one scoring produced; ``box``/``mask`` are None when the results lack boxes/masks."""

    backend: str
    num_images: int
    num_results: int
    box: ApSummary | None = None
    mask: ApSummary | None = None
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping) -> CocoMetrics:
        summaries = {key: ApSummary(**data[key]) if data.get(key) else None for key in IOU_TYPES}
        return cls(data["backend"], data["num_images"], data["num_results"], **summaries,
                   notes=list(data.get("notes", [])), seconds=data.get("seconds", 0.0))

    @classmethod
    def from_json(cls, path: Path) -> CocoMetrics:
        """Read a ``metrics.json`` written by ``maskbench evaluate`` (its ``metrics`` block)."""
        data = _read_json(Path(path), "metrics file")
        return cls.from_dict(data.get("metrics", data))


def available_backends() -> list[str]:
    return [name for name in BACKENDS if importlib.util.find_spec(name.replace("-", "_")) is not None]


def default_backend() -> str:
    """faster-coco-eval when installed (same numbers, faster), else pycocotools."""
    return available_backends()[0]


def load_annotations(path: Path) -> dict:
    """The annotation file as a dict, with a one-line error when it is not a COCO dataset."""
    data = _read_json(Path(path), "annotation file")
    missing = [key for key in ("images", "annotations", "categories") if not isinstance(data.get(key), list)]
    if missing:
        raise MaskbenchError(f"{path}: not a COCO annotation file (no {', '.join(missing)} list); "
                             "pass instances_*.json")
    return data


def score_results(results: Sequence[Mapping], annotations: Path | Mapping, *,
                  image_ids: Collection[int] | None = None, backend: str | None = None) -> CocoMetrics:
    """Box and mask AP of COCO ``results`` (dicts with the dataset's image and category ids).

    ``annotations``: an annotation file or its already loaded dict. ``image_ids``: the images
    to score (default: all of the annotation file); an image without results counts as one
    where nothing was detected. Box AP is computed when every entry has a ``bbox``, mask AP
    when every entry has a ``segmentation`` (polygons and uncompressed RLE are converted to
    compressed RLE at the image's size). Entries that cannot be scored (see :mod:`.entries`)
    are left out and counted in a note; when none can, or a segmentation cannot be read, the
    refusal is one line. ``results`` are not modified.
    """
    backend = backend or default_backend()
    if backend not in available_backends():
        raise MaskbenchError(f"backend {backend!r} is not installed; choose one of {', '.join(available_backends())}")
    dataset = annotations if isinstance(annotations, Mapping) else load_annotations(Path(annotations))
    all_ids = {image["id"] for image in dataset["images"]}
    scored_ids = sorted(all_ids if image_ids is None else set(image_ids))
    where = Path(annotations).name if not isinstance(annotations, Mapping) else "the annotation file"
    triaged = triage(results, dataset, annotations_name=where)
    triaged.require_some("results", image_hint=ANOTHER_DATASET)
    results = triaged.scorable
    started = time.perf_counter()
    coco_cls, eval_cls = _api(backend)
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints every step
        ground_truth = coco_cls()
        # COCOeval writes into the annotations (polygons -> RLE, 'ignore'): give it copies.
        ground_truth.dataset = {**dataset, "annotations": [dict(ann) for ann in dataset["annotations"]]}
        ground_truth.createIndex()
        metrics = CocoMetrics(backend, len(scored_ids), len(results))
        metrics.notes += [note for note in [triaged.note("results")] if note]
        for key, iou_type in IOU_TYPES.items():
            field_name = "bbox" if iou_type == "bbox" else "segmentation"
            if results and not all(field_name in entry for entry in results):
                metrics.notes.append(f"no {key} AP: the results have no '{field_name}'")
                continue
            entries = _copies(results if iou_type == "bbox" else for_segm_eval(results))
            detections = _load_results(coco_cls, ground_truth, entries)
            setattr(metrics, key, _evaluate(eval_cls, ground_truth, detections, iou_type, scored_ids))
    metrics.seconds = time.perf_counter() - started
    return metrics


def _api(backend: str):
    if backend == PYCOCOTOOLS:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval

        return COCO, COCOeval
    from faster_coco_eval import COCO, COCOeval_faster

    return COCO, COCOeval_faster


def _load_results(coco_cls, ground_truth, entries: list[dict]):
    """``loadRes``, except for an empty list, which pycocotools refuses: then an empty result set."""
    if entries:
        return ground_truth.loadRes(entries)
    empty = coco_cls()
    empty.dataset = {"images": ground_truth.dataset["images"], "categories": ground_truth.dataset["categories"],
                     "annotations": []}
    empty.createIndex()
    return empty


def _evaluate(eval_cls, ground_truth, detections, iou_type: str, image_ids: list[int]) -> ApSummary:
    evaluator = eval_cls(ground_truth, detections, iou_type)
    evaluator.params.imgIds = image_ids
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    stats = {name: float(value) for name, value in zip(STAT_NAMES, evaluator.stats)}
    return ApSummary(stats, _per_class_ap(evaluator, ground_truth))


def _per_class_ap(evaluator, ground_truth) -> dict[str, float | None]:
    """AP per class at IoU .50:.95, all areas, 100 detections: MMDetection's ``classwise`` table."""
    precision = evaluator.eval["precision"]  # (iou thresholds, recall points, classes, areas, max dets)
    per_class = {}
    for index, category_id in enumerate(evaluator.params.catIds):
        values = precision[:, :, index, 0, -1]
        values = values[values > -1]  # -1: no ground truth of this class in the scored images
        per_class[ground_truth.cats[category_id]["name"]] = float(values.mean()) if values.size else None
    return per_class


def _copies(entries: Sequence[Mapping]) -> list[dict]:
    """Copies that loadRes may modify (it adds area, id, iscrowd) without touching the caller's."""
    copies = []
    for entry in entries:
        copy = dict(entry)
        if isinstance(copy.get("segmentation"), dict):
            copy["segmentation"] = dict(copy["segmentation"])
        copies.append(copy)
    return copies


def _read_json(path: Path, what: str):
    if not path.is_file():
        raise MaskbenchError(f"{path}: no such {what}; check the path")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise MaskbenchError(f"{path}: not valid JSON ({err}); write the {what} again") from None
