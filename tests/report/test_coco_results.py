"""COCO results files: exact RLE masks, official category ids, pycocotools-loadable, atomic."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from maskbench.data.coco_classes import (
    COCO_CATEGORY_IDS,
    COCO_CLASSES,
    COCO_PALETTE,
    category_id_to_label,
    label_to_category_id,
)
from maskbench.pipeline import coco_results
from maskbench.pipeline.coco_results import (
    ImageRecord,
    detections_to_coco,
    for_segm_eval,
    write_coco_results,
    write_predictions,
)
from maskbench.pipeline.detections import Detections

H, W = 40, 60


def _detections() -> Detections:
    """Three instances: a car rectangle, a person blob, and an empty mask (label 79)."""
    masks = np.zeros((3, H, W), bool)
    masks[0, 10:20, 5:25] = True
    yy, xx = np.mgrid[:H, :W]
    masks[1] = (yy - 25) ** 2 + (xx - 40) ** 2 < 64
    boxes = np.array([[5, 10, 25, 20], [32.123, 17.5, 48.987, 33.0], [0, 0, 1, 1]], np.float32)
    scores = np.array([0.987654321, 0.5, 0.01], np.float32)
    labels = np.array([2, 0, 79], np.int64)
    return Detections(boxes, scores, labels, masks)


def _ground_truth(dets: Detections, image_id: int = 7) -> COCO:
    """A COCO ground truth whose annotations are exactly the detections' masks."""
    annotations = []
    for index, (label, mask) in enumerate(zip(dets.labels, dets.masks)):
        if not mask.any():
            continue
        rle = mask_utils.encode(np.asfortranarray(mask, dtype=np.uint8))
        x, y, w, h = mask_utils.toBbox(rle).tolist()
        rle["counts"] = rle["counts"].decode()
        annotations.append(
            {"id": index + 1, "image_id": image_id, "category_id": label_to_category_id(label),
             "segmentation": rle, "area": float(mask.sum()), "bbox": [x, y, w, h], "iscrowd": 0}
        )  # fmt: skip
    gt = COCO()
    gt.dataset = {
        "images": [{"id": image_id, "file_name": "a.jpg", "width": W, "height": H}],
        "categories": [{"id": cid, "name": name} for cid, name in zip(COCO_CATEGORY_IDS, COCO_CLASSES)],
        "annotations": annotations,
    }
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
    return gt


def test_category_mapping_round_trips_for_all_80():
    assert len(COCO_CLASSES) == len(COCO_CATEGORY_IDS) == len(COCO_PALETTE) == 80
    assert COCO_CATEGORY_IDS[:3] == (1, 2, 3) and COCO_CATEGORY_IDS[-1] == 90
    assert COCO_CLASSES[label_to_category_id(0) - 1] == "person"
    assert label_to_category_id(COCO_CLASSES.index("car")) == 3
    assert label_to_category_id(COCO_CLASSES.index("toothbrush")) == 90
    for label in range(80):
        assert category_id_to_label(label_to_category_id(label)) == label
    assert len(set(COCO_CATEGORY_IDS)) == 80


@pytest.mark.parametrize("bad_id", [0, 12, 26, 83, 91])
def test_unknown_category_id_is_a_value_error(bad_id):
    with pytest.raises(ValueError, match=f"category id {bad_id} is not one of the 80"):
        category_id_to_label(bad_id)


def test_out_of_range_label_is_a_value_error():
    with pytest.raises(ValueError):
        label_to_category_id(80)
    with pytest.raises(ValueError):
        label_to_category_id(-1)


def test_entries_have_coco_fields_ids_and_rounding():
    entries = detections_to_coco(_detections(), image_id=7)
    assert [e["category_id"] for e in entries] == [3, 1, 90]
    assert [e["category_name"] for e in entries] == ["car", "person", "toothbrush"]
    assert entries[0]["bbox"] == [5.0, 10.0, 20.0, 10.0]  # x, y, w, h
    assert entries[1]["bbox"] == [32.12, 17.5, 16.86, 15.5]
    assert entries[0]["score"] == 0.98765
    assert all(e["image_id"] == 7 and isinstance(e["segmentation"]["counts"], str) for e in entries)
    assert all(e["segmentation"]["size"] == [H, W] for e in entries)
    json.dumps(entries, allow_nan=False)  # plain JSON types only


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # inside pycocotools.decode
def test_rle_round_trip_equals_each_mask():
    dets = _detections()
    full = np.ones((1, H, W), bool)
    dets = Detections(
        np.concatenate([dets.boxes, [[0, 0, W, H]]]).astype(np.float32),
        np.concatenate([dets.scores, [0.001]]).astype(np.float32),
        np.concatenate([dets.labels, [5]]),
        np.concatenate([dets.masks, full]),
    )
    for entry, mask in zip(detections_to_coco(dets, 1), dets.masks):
        rle = dict(entry["segmentation"], counts=entry["segmentation"]["counts"].encode())
        np.testing.assert_array_equal(mask_utils.decode(rle).astype(bool), mask)


def test_no_detections_give_no_entries():
    empty = Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64),
                       np.zeros((0, H, W), bool))
    assert detections_to_coco(empty, 1) == []


def test_results_json_loads_in_pycocotools_and_scores_perfect_masks(tmp_path):
    dets = _detections()
    path = write_coco_results(tmp_path / "results.json", detections_to_coco(dets, 7))
    gt = _ground_truth(dets)
    with contextlib.redirect_stdout(io.StringIO()):
        predictions = gt.loadRes(str(path))  # extra "category_name" key accepted
        assert predictions.anns[1]["category_name"] == "car"
        segm = gt.loadRes(for_segm_eval(json.loads(path.read_text())))
        evaluator = COCOeval(gt, segm, "segm")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    assert evaluator.stats[0] == pytest.approx(1.0)  # masks identical to ground truth
    # Without bbox, the area is the mask's (MMDetection's practice for mask AP).
    assert segm.anns[2]["area"] == pytest.approx(float(dets.masks[1].sum()))
    assert predictions.anns[2]["area"] == pytest.approx(16.86 * 15.5)  # from the box otherwise


def test_write_predictions_makes_a_browsable_coco_pair(tmp_path):
    images = [
        ImageRecord(1, "samples/CAM_FRONT/a.jpg", W, H, camera="CAM_FRONT"),
        ImageRecord(2, "broken.jpg", None, None, error="broken.jpg: empty file (0 bytes); copy it again"),
    ]
    results_path, images_path = write_predictions(
        tmp_path / "out", images, detections_to_coco(_detections(), 1), info={"model": "mask-rcnn_r50"}
    )
    assert json.loads(results_path.read_text())[0]["category_id"] == 3
    listed = json.loads(images_path.read_text())
    assert listed["info"] == {"model": "mask-rcnn_r50"}
    assert listed["images"][0] == {"id": 1, "file_name": "samples/CAM_FRONT/a.jpg", "width": W, "height": H,
                                   "camera": "CAM_FRONT"}
    assert listed["images"][1]["error"].startswith("broken.jpg: empty file")
    with contextlib.redirect_stdout(io.StringIO()):
        browsed = COCO(str(images_path)).loadRes(str(results_path))
    assert len(browsed.getAnnIds(imgIds=[1])) == 3


def test_write_predictions_rejects_results_for_unlisted_images(tmp_path):
    with pytest.raises(ValueError, match=r"image ids \[9\] missing"):
        write_predictions(tmp_path, [ImageRecord(1, "a.jpg", W, H)], detections_to_coco(_detections(), 9))
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = write_coco_results(tmp_path / "results.json", [{"image_id": 1, "score": 0.5}])
    before = path.read_text()

    def crash_half_way(obj, file, **kwargs):
        file.write('[{"image_id": 1, "sco')
        raise KeyboardInterrupt

    monkeypatch.setattr(coco_results.json, "dump", crash_half_way)
    with pytest.raises(KeyboardInterrupt):
        write_coco_results(path, [{"image_id": 2, "score": 0.7}])
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_unserialisable_entry_leaves_no_file_and_no_temporary(tmp_path):
    """json.dump has written part of the list when it meets the object: nothing of it stays."""
    with pytest.raises(TypeError):
        write_coco_results(tmp_path / "out" / "results.json", [{"image_id": 1, "score": 0.5}, {"image_id": object()}])
    assert list((tmp_path / "out").iterdir()) == []


def test_nan_score_is_refused_not_written(tmp_path):
    with pytest.raises(ValueError):
        write_coco_results(tmp_path / "results.json", [{"image_id": 1, "score": float("nan")}])
    assert list(tmp_path.iterdir()) == []
