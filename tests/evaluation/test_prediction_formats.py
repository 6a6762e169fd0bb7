"""``evaluate --predictions`` on what other tools write: polygons and uncompressed RLE are
scored as the same masks in compressed RLE; an unreadable segmentation is refused naming the
entry; entries that cannot be scored are counted in one line and the rest scored."""

from __future__ import annotations

import json

import numpy as np
import pytest

from maskbench.cli.main import main
from maskbench.evaluation.categories import CategoryMap
from maskbench.evaluation.entries import triage
from maskbench.pipeline.coco_results import mask_to_rle


def _varied(dataset: dict) -> list[dict]:
    """Every non-crowd annotation as a prediction with its polygons, varied scores and every
    fifth one of a wrong class, so AP is not a trivial 1.0."""
    category_ids = sorted(cat["id"] for cat in dataset["categories"])
    entries = []
    for index, ann in enumerate(ann for ann in dataset["annotations"] if not ann["iscrowd"]):
        category = category_ids[(category_ids.index(ann["category_id"]) + 1) % len(category_ids)] \
            if index % 5 == 0 else ann["category_id"]
        entries.append({"id": ann["id"], "image_id": ann["image_id"], "category_id": category,
                        "bbox": list(ann["bbox"]), "score": round(0.05 + (index * 37 % 97) / 100, 2),
                        "segmentation": ann["segmentation"]})
    return entries


def _uncompressed_rle(mask: np.ndarray) -> dict:
    """COCO's uncompressed RLE: run lengths in column-major order, starting with background."""
    pixels = mask.ravel(order="F").astype(np.int8)
    run_starts = np.flatnonzero(np.diff(pixels)) + 1
    runs = np.diff(np.concatenate([[0], run_starts, [pixels.size]])).tolist()
    return {"size": list(mask.shape), "counts": [0, *runs] if pixels[0] else runs}


def _evaluate(tmp_path, name: str, entries: list[dict], annotations, capsys) -> tuple[int, dict | None, str, str]:
    (tmp_path / name).write_text(json.dumps(entries))
    out = tmp_path / f"out-{name}"
    code = main(["evaluate", "--predictions", str(tmp_path / name), "--coco", str(annotations), "--out", str(out)])
    printed = capsys.readouterr()
    metrics = json.loads((out / "metrics.json").read_text())["metrics"] if code == 0 else None
    return code, metrics, printed.out, printed.err


def test_polygons_and_uncompressed_rle_score_as_the_same_masks_in_rle(
        tiny_coco, tiny_dataset, gt_masks, tmp_path, capsys):
    annotations = tiny_coco[0]
    polygons = _varied(tiny_dataset)
    as_rle = [{**entry, "segmentation": mask_to_rle(gt_masks[entry["id"]])} for entry in polygons]
    mixed = [{**entry, "segmentation": _uncompressed_rle(gt_masks[entry["id"]])} if index % 2 else entry
             for index, entry in enumerate(polygons)]
    results = {name: _evaluate(tmp_path, f"{name}.json", entries, annotations, capsys)
               for name, entries in (("rle", as_rle), ("polygons", polygons), ("mixed", mixed))}
    reference = results["rle"][1]
    assert 0.3 < reference["mask"]["stats"]["AP"] < 0.95  # the wrong classes and scores matter
    for name in ("polygons", "mixed"):
        code, metrics, out, _ = results[name]
        assert code == 0 and "not scored" not in out
        assert metrics["mask"] == reference["mask"] and metrics["box"] == reference["box"], name


@pytest.mark.parametrize("segmentation, problem", [
    ([[10, 10, 20, 10, 20]], "a polygon has an odd number of coordinates (5)"),
    ([[10, 10, 20, 10]], "a polygon has 2 point(s), fewer than 3"),
    ([[10, 10, "x", 10, 20, 20]], "a polygon has a coordinate that is not a finite number"),
    ([10, 10, 20, 10, 20, 20], "segmentation is a list of numbers, not a list of polygons"),
    ({"size": [1, 1], "counts": [1]}, "RLE size [1, 1] is not its image's [height, width]"),
])
def test_a_segmentation_that_cannot_be_read_is_refused_naming_the_entry(
        tiny_coco, tiny_dataset, tmp_path, capsys, segmentation, problem):
    entries = _varied(tiny_dataset)[:6]
    entries[3]["segmentation"] = segmentation
    code, _, out, err = _evaluate(tmp_path, "bad.json", entries, tiny_coco[0], capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"error: bad.json: entry 3: {problem}"), err


def test_entries_that_cannot_be_scored_are_counted_in_one_line_and_the_rest_scored(
        tiny_coco, tiny_dataset, gt_masks, tmp_path, capsys):
    entries = [{**entry, "segmentation": mask_to_rle(gt_masks[entry["id"]])} for entry in _varied(tiny_dataset)]
    damaged = json.loads(json.dumps(entries))
    damaged[17]["bbox"][0] = float("nan")  # json writes NaN, as Python tools do
    damaged[40]["bbox"][3] = float("inf")
    damaged[5]["bbox"][2] = -3.0
    damaged[9]["category_id"] = 91  # not a category of the annotation file
    damaged[11]["image_id"] = 7  # not an image of it
    del damaged[12]["score"]
    bad = {5, 9, 11, 12, 17, 40}
    code, metrics, out, _ = _evaluate(tmp_path, "predictions.json", damaged, tiny_coco[0], capsys)
    assert code == 0
    line = next(line for line in out.splitlines() if "not scored" in line)
    assert line == (f"note: predictions.json: 6 of {len(damaged)} entries not scored: 2 with a NaN or infinite box "
                    "(first: index 17), 1 with a negative-size box (first: index 5), 1 with category 91 not in "
                    "instances_val2017.json (first: index 9), 1 with image 7 not in instances_val2017.json (first: "
                    "index 11), 1 with no score (first: index 12)")
    clean = [entry for index, entry in enumerate(entries) if index not in bad]
    _, reference, _, _ = _evaluate(tmp_path, "clean.json", clean, tiny_coco[0], capsys)
    assert metrics["box"] == reference["box"] and metrics["mask"] == reference["mask"]
    assert metrics["num_results"] == len(clean) and line[len("note: "):] in metrics["notes"]


def test_nothing_left_to_score_is_refused_and_classes_the_file_lacks_are_named(tiny_dataset):
    with pytest.raises(Exception, match=r"results: 1 of 1 entries not scored: 1 with a box that is not "
                                        r"\[x, y, w, h\] \(first: index 0\): nothing left to score"):
        triage([{"image_id": 1, "category_id": 1, "score": 1, "bbox": [1, 2]}], tiny_dataset).require_some(
            "results", image_hint="")
    # predict's entries name their class: one the annotation file lacks is counted by name
    subset = {**tiny_dataset, "categories": [cat for cat in tiny_dataset["categories"] if cat["name"] != "toaster"]}
    image = tiny_dataset["images"][0]["id"]
    entries = [{"image_id": image, "category_id": 80, "category_name": "toaster", "score": 0.5, "bbox": [0, 0, 5, 5]},
               {"image_id": image, "category_id": 1, "category_name": "person", "score": 0.5, "bbox": [0, 0, 5, 5]}]
    triaged = triage(entries, subset, source="results.json", category_map=CategoryMap.from_categories(
        subset["categories"]))
    assert [entry["category_id"] for entry in triaged.scorable] == [1]
    assert triaged.note("results.json") == ("results.json: 1 of 2 entries not scored: 1 with category 'toaster' not "
                                            "in the annotation file (first: index 0)")


def test_predict_files_with_an_image_the_annotation_file_lacks_score_the_others(
        tiny_coco, tiny_dataset, gt_masks, tmp_path, capsys):
    """predict run on a folder holding one image more than the dataset: its results are counted
    by file name, the dataset's images scored."""
    from maskbench.pipeline.coco_results import ImageRecord, write_predictions

    chosen = sorted(tiny_dataset["images"], key=lambda image: image["id"])[:2]
    records = [ImageRecord(i, image["file_name"], image["width"], image["height"]) for i, image in enumerate(chosen, 1)]
    records.append(ImageRecord(3, "holiday.jpg", chosen[0]["width"], chosen[0]["height"]))
    results = [{"image_id": predict_id, "category_id": ann["category_id"], "bbox": ann["bbox"], "score": 0.9,
                "category_name": next(c["name"] for c in tiny_dataset["categories"] if c["id"] == ann["category_id"])}
               for predict_id, image in ((1, chosen[0]), (2, chosen[1]), (3, chosen[0]))
               for ann in tiny_dataset["annotations"] if ann["image_id"] == image["id"] and not ann["iscrowd"]]
    write_predictions(tmp_path / "predict", records, results)
    out = tmp_path / "eval"
    assert main(["evaluate", "--predictions", str(tmp_path / "predict" / "results.json"), "--coco",
                 str(tiny_coco[0]), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    extra = sum(1 for entry in results if entry["image_id"] == 3)
    assert (f"results.json: {extra} of {len(results)} entries not scored: {extra} with image 'holiday.jpg' not in "
            "instances_val2017.json") in printed
    metrics = json.loads((out / "metrics.json").read_text())["metrics"]
    assert metrics["num_images"] == 2 and metrics["box"]["stats"]["AP"] == 1.0
