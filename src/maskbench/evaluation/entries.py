"""Which COCO result entries can be scored, in the one form both COCOeval backends take.

Results come from maskbench (compressed RLE masks) and from other tools, which also write
polygons (labelling tools, some exporters) and uncompressed RLE (``counts`` as a list). Both
backends' ``loadRes`` take the area of compressed RLE only, so every segmentation is converted
here with pycocotools at its image's size from the annotation file, as ``COCO.annToRLE`` does
for the ground truth.

An entry that cannot be scored (not an object, no image_id/category_id/score, a score that is
not a number, a NaN/infinite or negative-size box, an image or category the annotation file
does not have) is left out and counted in one line: the rest of the file is still worth
scoring, and the line says what was not. A segmentation that is there but cannot be read is
refused, naming the entry: the writer's format is then not understood, and scoring the rest
would hide that. ``segmentation`` null or ``[]`` and ``bbox`` null count as absent (writers of
boxes or masks only).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pycocotools import mask as mask_utils

from maskbench.utils.errors import MaskbenchError

from .categories import CategoryMap, dataset_category_id

REQUIRED = ("image_id", "category_id", "score")
SHOWN_IDS = 5  # unknown image/category ids named in the line
PLURAL = {"image": "images", "category": "categories"}
ANOTHER_DATASET = ("the results were made for another dataset, or with maskbench predict's own numbering (keep "
                   "its images.json beside results.json so evaluate can match the images by file name)")


@dataclass
class NotScored:
    """Why entries were left out: reason -> count and the first entry's index; for an unknown
    image or category, the ids (or names) behind it."""

    counts: Counter = field(default_factory=Counter)
    first: dict[str, int] = field(default_factory=dict)
    unknown: dict[str, tuple[str, str, list]] = field(default_factory=dict)  # reason -> (noun, where, ids)

    def add(self, index: int, reason: str) -> None:
        self.counts[reason] += 1
        self.first.setdefault(reason, index)

    def add_unknown(self, index: int, noun: str, value: object, where: str) -> None:
        """An entry whose image or category (``noun``) ``value`` is not in ``where``."""
        reason = f"with {noun} not in {where}"
        self.add(index, reason)
        values = self.unknown.setdefault(reason, (noun, where, []))[2]
        if value not in values:
            values.append(value)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def line(self, source: str, entries: int) -> str:
        """``results.json: 3 of 812 entries not scored: 2 with a NaN or infinite box (first:
        index 17), 1 with category 91 not in instances_val2017.json (first: index 5)``."""
        parts = [f"{count} {self._describe(reason)} (first: index {self.first[reason]})"
                 for reason, count in self.counts.most_common()]
        return f"{source}: {self.total} of {entries} entries not scored: {', '.join(parts)}"

    def _describe(self, reason: str) -> str:
        if reason not in self.unknown:
            return reason
        noun, where, values = self.unknown[reason]
        shown = ", ".join(repr(v) if isinstance(v, str) else str(v) for v in values[:SHOWN_IDS])
        more = " ..." if len(values) > SHOWN_IDS else ""
        return f"with {PLURAL[noun] if len(values) > 1 else noun} {shown}{more} not in {where}"


@dataclass
class Triage:
    """The entries that can be scored (copies: segmentation as compressed RLE, ids the
    dataset's) and why the others cannot."""

    scorable: list[dict]
    not_scored: NotScored
    total: int

    def note(self, source: str) -> str | None:
        return self.not_scored.line(source, self.total) if self.not_scored.total else None

    def require_some(self, source: str, image_hint: str) -> None:
        """Refuse (one line) when entries were given and none of them can be scored;
        ``image_hint``: what to do when some of them name images the dataset does not have."""
        if self.total and not self.scorable:
            images = any(noun == "image" for noun, _, _ in self.not_scored.unknown.values())
            raise MaskbenchError(f"{self.not_scored.line(source, self.total)}: nothing left to score"
                                 + (f"; {image_hint}" if images else ""))


def triage(entries: Sequence, dataset: Mapping, *, source: str = "results",
           annotations_name: str = "the annotation file", category_map: CategoryMap | None = None,
           image_ids: Mapping | None = None, image_names: Mapping | None = None) -> Triage:
    """Split COCO result ``entries`` into those that can be scored against ``dataset`` and the
    count of the others; refuse (one line naming ``source`` and the entry's index) a
    segmentation that cannot be read.

    ``category_map``: map entries that carry a ``category_name`` by name (``maskbench predict``'s
    files; see :func:`.categories.dataset_category_id`); ``image_ids``: the results' image id ->
    the dataset's (predict's numbering, matched by file name), default the dataset's own ids;
    ``image_names``: what to call an unmatched image of ``image_ids`` in the line.
    """
    sizes = {image["id"]: (image.get("height"), image.get("width")) for image in dataset["images"]}
    known_categories = {category["id"] for category in dataset["categories"]}
    not_scored, scorable = NotScored(), []
    for index, entry in enumerate(entries):
        reason = _reason(entry)
        if reason:
            not_scored.add(index, reason)
            continue
        image_id = _lookup(image_ids, entry["image_id"]) if image_ids is not None else entry["image_id"]
        if not _known(image_id, sizes):
            label = _lookup(image_names or {}, entry["image_id"]) or entry["image_id"]
            not_scored.add_unknown(index, "image", _label(label), annotations_name)
            continue
        category_id = dataset_category_id(entry, category_map) if category_map is not None else entry["category_id"]
        if not _known(category_id, known_categories):
            label = entry.get("category_name", category_id) if category_map is not None else category_id
            not_scored.add_unknown(index, "category", _label(label), annotations_name)
            continue
        scorable.append(_scorable_copy(entry, image_id, category_id, sizes[image_id], source, index))
    return Triage(scorable, not_scored, len(entries))


def _reason(entry) -> str | None:
    """Why ``entry`` cannot be scored whatever the dataset, or None."""
    if not isinstance(entry, Mapping):
        return "that is not a JSON object"
    for key in REQUIRED:
        if key not in entry:
            return f"with no {key}"
    if not _finite_number(entry["score"]):
        return "with a score that is not a number"
    if entry.get("bbox") is not None:
        box = entry["bbox"]
        if not isinstance(box, (list, tuple)) or len(box) != 4 or not all(_number(v) for v in box):
            return "with a box that is not [x, y, w, h]"
        if not all(math.isfinite(v) for v in box):
            return "with a NaN or infinite box"
        if box[2] < 0 or box[3] < 0:
            return "with a negative-size box"
    elif _segmentation(entry) is None:
        return "with neither a bbox nor a segmentation"
    return None


def _scorable_copy(entry: Mapping, image_id, category_id, size: tuple, source: str, index: int) -> dict:
    copy = {key: value for key, value in entry.items()
            if key != "segmentation" and not (key == "bbox" and value is None)}
    copy["image_id"], copy["category_id"] = image_id, category_id
    segmentation = _segmentation(entry)
    if segmentation is not None:
        try:
            copy["segmentation"] = compressed_rle(segmentation, *size)
        except ValueError as err:
            raise MaskbenchError(f"{source}: entry {index}: {err}; a segmentation is a list of polygons "
                                 "[[x1, y1, x2, y2, ...], ...] of 3 or more points, or RLE {size, counts}") from None
    return copy


def compressed_rle(segmentation, height, width) -> dict:
    """``segmentation`` (polygons, uncompressed or compressed RLE) as compressed RLE with
    ``counts`` a str, for an image of ``height`` x ``width``; ValueError says what is wrong."""
    if not _number(height) or not _number(width):
        raise ValueError("the annotation file gives no height/width for its image")
    height, width = int(height), int(width)
    if isinstance(segmentation, Mapping):
        rle = _checked_rle(segmentation, height, width)
    elif isinstance(segmentation, list):
        _check_polygons(segmentation)
        rle = mask_utils.merge(mask_utils.frPyObjects([[float(v) for v in p] for p in segmentation], height, width))
    else:
        raise ValueError(f"segmentation is a {type(segmentation).__name__}")
    counts = rle["counts"]
    return {"size": [height, width], "counts": counts.decode("ascii") if isinstance(counts, bytes) else counts}


def _checked_rle(rle: Mapping, height: int, width: int) -> dict:
    size, counts = rle.get("size"), rle.get("counts")
    if not isinstance(size, (list, tuple)) or [*size] != [height, width]:
        raise ValueError(f"RLE size {size} is not its image's [height, width] {[height, width]}")
    if isinstance(counts, (str, bytes)):
        return {"size": [height, width], "counts": counts}
    if not isinstance(counts, list) or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0
                                               for c in counts):
        raise ValueError("RLE counts are neither a string nor a list of non-negative integers")
    if sum(counts) != height * width:
        raise ValueError(f"RLE counts add up to {sum(counts)} pixels, not {height}x{width}")
    return mask_utils.frPyObjects({"size": [height, width], "counts": counts}, height, width)


def _check_polygons(polygons: list) -> None:
    for polygon in polygons:
        if not isinstance(polygon, list):
            raise ValueError("segmentation is a list of numbers, not a list of polygons; wrap it in [ ]"
                             if _number(polygon) else "a polygon is not a list of numbers")
        if not all(_finite_number(v) for v in polygon):
            raise ValueError("a polygon has a coordinate that is not a finite number")
        if len(polygon) % 2:
            raise ValueError(f"a polygon has an odd number of coordinates ({len(polygon)})")
        if len(polygon) < 6:
            raise ValueError(f"a polygon has {len(polygon) // 2} point(s), fewer than 3")


def _segmentation(entry: Mapping):
    segmentation = entry.get("segmentation")
    return None if segmentation is None or segmentation == [] else segmentation


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _finite_number(value) -> bool:
    return _number(value) and math.isfinite(value)


def _hashable(value) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _label(value):
    """``value`` as it can be named and compared in the line (a list id: its text)."""
    return value if _hashable(value) else str(value)


def _known(value, known) -> bool:
    return _hashable(value) and value in known


def _lookup(mapping: Mapping, key):
    return mapping.get(key) if _hashable(key) else None
