"""Read a results file written by ``maskbench predict`` (or any tool) in the dataset's ids.

Two numberings can differ from the annotation file's:

- image ids: ``predict`` numbers the images it was given 1..N and lists them, with their
  paths, in ``images.json`` beside ``results.json``. When that file is there, each image is
  matched to the annotation file's image of the same file name and its results renumbered.
  Without it, the image ids are taken as the annotation file's (any other tool).
- category ids: entries with a ``category_name`` (predict's) are mapped by name to the
  annotation file's ids; entries without one keep theirs (see ``categories.to_dataset_ids``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from maskbench.errors import MaskbenchError
from maskbench.report.coco_results import IMAGES_FILE

from .categories import CategoryMap, to_dataset_ids


@dataclass
class LoadedPredictions:
    """``image_ids``: the dataset images predict processed without error (None: all of them)."""

    entries: list[dict]
    notes: list[str]
    image_ids: list[int] | None = None


def load_predictions(results_path: Path, dataset: dict) -> LoadedPredictions:
    """The results of ``results_path`` with image and category ids of ``dataset``."""
    results_path = Path(results_path)
    if not results_path.is_file():
        raise MaskbenchError(f"{results_path}: no such results file; pass the results.json that predict wrote")
    try:
        entries = json.loads(results_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise MaskbenchError(f"{results_path}: not valid JSON ({err})") from None
    if not isinstance(entries, list):
        raise MaskbenchError(f"{results_path}: not a COCO results list (a JSON list of detections)")
    notes, image_ids = [], None
    images_file = results_path.parent / IMAGES_FILE
    if images_file.is_file():
        entries, image_ids = _renumber_images(entries, images_file, dataset)
        notes.append(f"image ids: matched by file name through {images_file}; scored: the {len(image_ids)} "
                     "image(s) predict processed without error")
    else:
        notes.append("image ids: taken as the annotation file's (no images.json beside the results); "
                     "every image of the annotation file is scored")
    if not any("category_name" in entry for entry in entries):  # another tool: any dataset, its own ids
        notes.append("category ids: as written (the results have no category_name)")
        return LoadedPredictions(entries, notes, image_ids)
    entries, dropped = to_dataset_ids(entries, CategoryMap.from_categories(dataset["categories"]))
    notes.append("category ids: mapped by category_name to the annotation file's ids (entries without a "
                 "name: as written)")
    if dropped:
        notes.append(f"{dropped} detection(s) of classes the annotation file does not list were dropped")
    return LoadedPredictions(entries, notes, image_ids)


def _renumber_images(entries: list[dict], images_file: Path, dataset: dict) -> tuple[list[dict], list[int]]:
    """Map predict's image ids to the dataset's through the file names both list; also return
    the dataset ids of the images predict processed without error."""
    listed = json.loads(images_file.read_text(encoding="utf-8")).get("images", [])
    by_name: dict[str, list[int]] = {}
    for image in dataset["images"]:
        by_name.setdefault(PurePosixPath(image["file_name"]).name, []).append(image["id"])
    dataset_id = {}
    for image in listed:
        name = PurePosixPath(str(image["file_name"]).replace("\\", "/")).name
        matches = by_name.get(name, [])
        if len(matches) > 1:
            raise MaskbenchError(f"{images_file}: {name} matches {len(matches)} images of the annotation file; "
                                 "file names must be unique to match predict's images to it")
        if matches:
            dataset_id[image["id"]] = matches[0]
    unmatched = sorted({entry["image_id"] for entry in entries} - set(dataset_id))
    if unmatched:
        names = {image["id"]: image["file_name"] for image in listed}
        raise MaskbenchError(f"{len(unmatched)} predicted image(s) are not in the annotation file (e.g. "
                             f"{names.get(unmatched[0], unmatched[0])}); predict on the dataset's images")
    processed = sorted(dataset_id[image["id"]] for image in listed
                       if image["id"] in dataset_id and not image.get("error"))
    return [{**entry, "image_id": dataset_id[entry["image_id"]]} for entry in entries], processed
