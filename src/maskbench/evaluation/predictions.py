"""Read a results file written by ``maskbench predict`` (or any tool) in the dataset's ids.

Two numberings can differ from the annotation file's:

- image ids: ``predict`` numbers the images it was given 1..N and lists them, with their
  paths, in ``images.json`` beside ``results.json``. When that file is there, each image is
  matched to the annotation file's image of the same file name and its results renumbered.
  Without it, the image ids are taken as the annotation file's (any other tool).
- category ids: entries with a ``category_name`` (predict's) are mapped by name to the
  annotation file's ids; entries without one keep theirs (see ``categories.dataset_category_id``).

Which entries can be scored, and the conversion of polygons and uncompressed RLE, is
:mod:`.entries`' (the same check :func:`~.coco_eval.score_results` applies to any list).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from maskbench.pipeline.coco_results import IMAGES_FILE
from maskbench.utils.errors import MaskbenchError

from .categories import CategoryMap
from .entries import ANOTHER_DATASET, triage


@dataclass
class LoadedPredictions:
    """``entries``: those that can be scored (see :mod:`.entries`); ``image_ids``: the dataset
    images predict processed without error (None: all of them); ``not_scored``: how many of
    the file's entries were left out (the note says which and why)."""

    entries: list[dict]
    notes: list[str]
    image_ids: list[int] | None = None
    not_scored: int = 0


def load_predictions(results_path: Path, dataset: dict, annotations_name: str = "the annotation file"
                     ) -> LoadedPredictions:
    """The results of ``results_path`` that can be scored, with image and category ids of
    ``dataset`` (whose file is called ``annotations_name`` in messages) and masks as
    compressed RLE; a segmentation that cannot be read is refused naming the entry."""
    results_path = Path(results_path)
    entries = _read_json(results_path, "results file; pass the results.json that predict wrote")
    if not isinstance(entries, list):
        raise MaskbenchError(f"{results_path}: not a COCO results list (a JSON list of detections)")
    notes, image_ids, names, processed = [], None, None, None
    images_file = results_path.parent / IMAGES_FILE
    hint = ANOTHER_DATASET
    if images_file.is_file():
        image_ids, names, processed = _match_images(images_file, dataset)
        hint = "predict on the annotation file's images"
        notes.append(f"image ids: matched by file name through {images_file}; scored: the {len(processed)} "
                     "image(s) predict processed without error")
    else:
        notes.append("image ids: taken as the annotation file's (no images.json beside the results); "
                     "every image of the annotation file is scored")
    category_map = None
    if any(isinstance(entry, dict) and "category_name" in entry for entry in entries):
        category_map = CategoryMap.from_categories(dataset["categories"])
        notes.append("category ids: mapped by category_name to the annotation file's ids (entries without a "
                     "name: as written)")
    else:  # another tool: any dataset, its own ids
        notes.append("category ids: as written (the results have no category_name)")
    triaged = triage(entries, dataset, source=results_path.name, annotations_name=annotations_name,
                     category_map=category_map, image_ids=image_ids, image_names=names)
    triaged.require_some(results_path.name, image_hint=hint)
    note = triaged.note(results_path.name)
    if note:
        notes.append(note)
    return LoadedPredictions(triaged.scorable, notes, processed, triaged.not_scored.total)


def _match_images(images_file: Path, dataset: dict) -> tuple[dict[int, int], dict[int, str], list[int]]:
    """predict's image id -> the dataset's, matched through the file names both list; predict's
    id -> its file name; the dataset ids of the images predict processed without error."""
    data = _read_json(images_file, "images file")
    listed = data.get("images", []) if isinstance(data, dict) else []
    by_name: dict[str, list[int]] = {}
    for image in dataset["images"]:
        by_name.setdefault(PurePosixPath(image["file_name"]).name, []).append(image["id"])
    dataset_id, names = {}, {}
    for image in listed:
        name = PurePosixPath(str(image["file_name"]).replace("\\", "/")).name
        names[image["id"]] = name
        matches = by_name.get(name, [])
        if len(matches) > 1:
            raise MaskbenchError(f"{images_file}: {name} matches {len(matches)} images of the annotation file; "
                                 "file names must be unique to match predict's images to it")
        if matches:
            dataset_id[image["id"]] = matches[0]
    processed = sorted(dataset_id[image["id"]] for image in listed
                       if image["id"] in dataset_id and not image.get("error"))
    return dataset_id, names, processed


def _read_json(path: Path, what: str):
    if not path.is_file():
        raise MaskbenchError(f"{path}: no such {what}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise MaskbenchError(f"{path}: not valid JSON ({err})") from None
