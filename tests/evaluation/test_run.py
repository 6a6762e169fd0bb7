"""evaluate_predictor: images from the annotation file, per-image failures, the rest scored."""

import json
import shutil

from maskbench.evaluation import evaluate_predictor

from .helpers import GroundTruthPredictor


def test_bad_images_are_reported_and_the_rest_scored(tiny_coco, tiny_dataset, gt_masks, tmp_path):
    images = sorted(tiny_dataset["images"], key=lambda image: image["id"])[:5]
    good, corrupt, missing, wrong_size, model_fails = images
    folder = tmp_path / "images"
    folder.mkdir()
    for image in (good, wrong_size, model_fails):
        shutil.copy(tiny_coco[1] / image["file_name"], folder / image["file_name"])
    (folder / corrupt["file_name"]).write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    ids = {image["id"] for image in images}
    listed = [dict(image) for image in images]
    listed[3]["width"] += 1  # the file is not the image the annotation file describes
    dataset = {"images": listed, "categories": tiny_dataset["categories"],
               "annotations": [ann for ann in tiny_dataset["annotations"] if ann["image_id"] in ids]}
    annotation_file = tmp_path / "instances.json"
    annotation_file.write_text(json.dumps(dataset))
    predictor = GroundTruthPredictor(dataset, gt_masks, folder, fail_on={model_fails["id"]})

    result = evaluate_predictor(predictor, annotation_file, folder, progress=False)

    assert result.images_total == 5 and result.images_scored == 1
    reasons = {failure.image_id: failure.error for failure in result.failures}
    assert set(reasons) == {corrupt["id"], missing["id"], wrong_size["id"], model_fails["id"]}
    assert "corrupt" in reasons[corrupt["id"]] or "not a recognised" in reasons[corrupt["id"]]
    assert "no such file" in reasons[missing["id"]]
    assert "annotation file says" in reasons[wrong_size["id"]]
    assert "model failed" in reasons[model_fails["id"]]
    # Failed images are left out, not scored as empty: their missed instances would cost AP.
    assert result.metrics.num_images == 1
    assert result.metrics.box.stats["AP"] == result.metrics.mask.stats["AP"] == 1.0
    assert {entry["image_id"] for entry in result.results} == {good["id"]}
    assert result.timing.ms_per_image > 0 and not result.random_weights
    assert json.loads(json.dumps(result.to_dict()))["images_scored"] == 1


def test_max_images_takes_the_first_by_id(tiny_coco, tiny_dataset, gt_masks):
    predictor = GroundTruthPredictor(tiny_dataset, gt_masks, tiny_coco[1])
    result = evaluate_predictor(predictor, tiny_coco[0], tiny_coco[1], max_images=3, progress=False)
    first_ids = sorted(image["id"] for image in tiny_dataset["images"])[:3]
    assert result.images_scored == 3 and not result.failures
    assert {entry["image_id"] for entry in result.results} == set(first_ids)
    assert result.metrics.mask.stats["AP"] == 1.0
