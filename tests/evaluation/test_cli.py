"""``maskbench evaluate``: a model end to end (random weights), and scoring predict's files."""

import copy
import json

from maskbench.cli.main import main
from maskbench.data.images import load_image
from maskbench.pipeline.coco_results import ImageRecord, detections_to_coco, write_predictions

from .helpers import GroundTruthPredictor


def test_random_weights_end_to_end_says_the_ap_is_meaningless(tmp_path, capsys):
    """r50 at a small input (the mask head's 100 RoIs dominate: about 5-8 s per image on 2 cores)."""
    out = tmp_path / "eval"
    code = main(["evaluate", "--model", "r50", "--weights", "random", "--input-size", "320x192",
                 "--max-images", "2", "--out", str(out), "--no-progress"])
    printed = capsys.readouterr().out
    assert code == 0
    assert "untrained random weights" in printed and "meaningless" in printed
    assert "| box  |" in printed and "| mask |" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["random_weights"] is True and "meaningless" in metrics["warning"]
    assert metrics["images_scored"] == 2 and metrics["metrics"]["num_images"] == 2
    assert 0.0 <= metrics["metrics"]["mask"]["stats"]["AP"] <= 1.0
    assert "untrained random weights" in (out / "metrics.md").read_text()
    results = json.loads((out / "results.json").read_text())
    assert len({entry["image_id"] for entry in results}) == 2 and len(results) == 200  # fixed_count: 100 each


def _renumbered(dataset):
    """The same data with other category ids (1000 + index) and image ids (x 10), as a user's
    own export might number them: scoring works only if both are matched, not assumed."""
    dataset = copy.deepcopy(dataset)
    new_category = {cat["id"]: 1000 + index for index, cat in enumerate(dataset["categories"])}
    for cat in dataset["categories"]:
        cat["id"] = new_category[cat["id"]]
    for image in dataset["images"]:
        image["id"] *= 10
    for ann in dataset["annotations"]:
        ann["category_id"] = new_category[ann["category_id"]]
        ann["image_id"] *= 10
    return dataset


def test_predictions_written_by_predict_are_matched_by_file_name_and_class(
        tiny_coco, tiny_dataset, gt_masks, tmp_path, capsys):
    annotations, images_dir = tiny_coco
    chosen = sorted(tiny_dataset["images"], key=lambda image: image["file_name"])[:4]
    predictor = GroundTruthPredictor(tiny_dataset, gt_masks, images_dir)
    records, results = [], []
    for predict_id, image in enumerate(chosen, 1):  # predict numbers the images it is given 1..N
        path = images_dir / image["file_name"]
        if predict_id == 4:  # an image predict could not read: listed with its error, no results
            records.append(ImageRecord(predict_id, str(path), None, None, error=f"{path}: unreadable"))
            continue
        records.append(ImageRecord(predict_id, str(path), image["width"], image["height"]))
        results.extend(detections_to_coco(predictor(load_image(path)), predict_id))
    predict_out = tmp_path / "predict"
    write_predictions(predict_out, records, results, {"weights": "official (test)"})
    renumbered = tmp_path / "renumbered.json"
    renumbered.write_text(json.dumps(_renumbered(tiny_dataset)))

    out = tmp_path / "eval"
    code = main(["evaluate", "--predictions", str(predict_out / "results.json"), "--coco", str(renumbered),
                 "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0 and "random" not in printed
    metrics = json.loads((out / "metrics.json").read_text())["metrics"]
    assert metrics["num_images"] == 3  # the three predict processed; the failed one is not scored
    assert metrics["box"]["stats"]["AP"] == metrics["mask"]["stats"]["AP"] == 1.0
    assert any("matched by file name" in note for note in metrics["notes"])

    # Scored again, compared with the first: nothing differs.
    again = tmp_path / "again"
    assert main(["evaluate", "--predictions", str(predict_out / "results.json"), "--coco", str(renumbered),
                 "--out", str(again), "--compare-with", str(out / "metrics.json")]) == 0
    difference = json.loads((again / "difference.json").read_text())["other_minus_reference"]
    assert difference["box"]["AP"] == 0.0 and difference["same_images"]
    assert "+0.00" in capsys.readouterr().out


def test_predictions_of_another_tool_use_the_files_ids(tiny_coco, tiny_dataset, tmp_path, capsys):
    """No images.json, no category_name: ids are the annotation file's; unlisted images count as empty."""
    annotations, _ = tiny_coco
    first = sorted(tiny_dataset["images"], key=lambda image: image["id"])[0]["id"]
    results = [{"image_id": ann["image_id"], "category_id": ann["category_id"], "bbox": ann["bbox"], "score": 0.9}
               for ann in tiny_dataset["annotations"] if ann["image_id"] == first and not ann["iscrowd"]]
    (tmp_path / "boxes.json").write_text(json.dumps(results))
    out = tmp_path / "eval"
    assert main(["evaluate", "--predictions", str(tmp_path / "boxes.json"), "--coco", str(annotations),
                 "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())["metrics"]
    assert metrics["num_images"] == 80 and metrics["mask"] is None
    assert 0.0 < metrics["box"]["stats"]["AP"] < 0.2  # one image of 80 found
    assert "no mask AP" in capsys.readouterr().out
    # Another tool's results on a dataset that is not COCO at all: scored by its own ids alike.
    not_coco = copy.deepcopy(tiny_dataset)
    for cat in not_coco["categories"]:
        cat["name"] = f"part-{cat['id']}"
    (tmp_path / "parts.json").write_text(json.dumps(not_coco))
    assert main(["evaluate", "--predictions", str(tmp_path / "boxes.json"), "--coco", str(tmp_path / "parts.json"),
                 "--out", str(tmp_path / "parts")]) == 0
    parts = json.loads((tmp_path / "parts" / "metrics.json").read_text())["metrics"]
    assert parts["box"]["stats"] == metrics["box"]["stats"]
