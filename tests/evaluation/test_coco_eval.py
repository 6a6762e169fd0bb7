"""Scoring: perfect predictions score 1, damaged ones score exactly what pycocotools scores."""

import contextlib
import copy
import io
import json

import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from maskbench.evaluation import ap_difference, score_results
from maskbench.evaluation.coco_eval import PYCOCOTOOLS, STAT_NAMES, available_backends, default_backend
from maskbench.pipeline.coco_results import mask_to_rle
from maskbench.utils.errors import MaskbenchError

from .helpers import gt_as_predictions, perturbed_predictions

BACKENDS = available_backends()


def pycocotools_reference(annotation_file, entries, iou_type):
    """COCOeval run directly, the documented way: mask results loaded without their bbox."""
    if iou_type == "segm":
        entries = [{key: value for key, value in entry.items() if key != "bbox"} for entry in entries]
    with contextlib.redirect_stdout(io.StringIO()):
        ground_truth = COCO(str(annotation_file))
        evaluator = COCOeval(ground_truth, ground_truth.loadRes(copy.deepcopy(entries)), iou_type)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return dict(zip(STAT_NAMES, (float(value) for value in evaluator.stats))), evaluator


def assert_same_numbers(ours: dict, reference: dict, backend: str) -> None:
    """pycocotools: bit-identical. faster-coco-eval sums in C++ in another order, so its last bit
    may differ (measured: at most 2.2e-16); 1e-12 is far below any printed digit of AP."""
    if backend == PYCOCOTOOLS:
        assert ours == reference
    else:
        assert ours == pytest.approx(reference, abs=1e-12, rel=0)


@pytest.fixture(scope="module")
def perturbed(tiny_dataset, gt_masks):
    return perturbed_predictions(tiny_dataset, gt_masks, seed=0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_ground_truth_as_predictions_scores_one(tiny_coco, tiny_dataset, gt_masks, backend):
    metrics = score_results(gt_as_predictions(tiny_dataset, gt_masks), tiny_coco[0], backend=backend)
    for summary in (metrics.box, metrics.mask):
        assert summary.stats["AP"] == summary.stats["AP50"] == summary.stats["AP75"] == 1.0
        assert summary.stats["APs"] == summary.stats["APm"] == summary.stats["APl"] == 1.0
        assert list(summary.per_class.values()) == pytest.approx([1.0] * 80, abs=1e-12)
    assert metrics.num_images == 80


@pytest.mark.parametrize("backend", BACKENDS)
def test_perturbed_ground_truth_scores_exactly_as_pycocotools(tiny_coco, perturbed, backend):
    metrics = score_results(perturbed, tiny_coco[0], backend=backend)
    for summary, iou_type in ((metrics.box, "bbox"), (metrics.mask, "segm")):
        expected, evaluator = pycocotools_reference(tiny_coco[0], perturbed, iou_type)
        assert_same_numbers(summary.stats, expected, backend)
        assert 0.2 < expected["AP"] < 0.95  # the perturbation really costs AP, but not all of it
        precision = evaluator.eval["precision"]
        for index, category_id in enumerate(evaluator.params.catIds):
            values = precision[:, :, index, 0, -1]
            name = evaluator.cocoGt.cats[category_id]["name"]
            assert_same_numbers({name: summary.per_class[name]}, {name: float(values[values > -1].mean())}, backend)


def test_backends_agree_and_the_difference_is_zero(tiny_coco, perturbed):
    if len(BACKENDS) < 2:
        pytest.skip("only one COCOeval backend installed")
    first, second = (score_results(perturbed, tiny_coco[0], backend=backend) for backend in BACKENDS)
    for key in ("box", "mask"):
        assert_same_numbers(getattr(first, key).stats, getattr(second, key).stats, "faster-coco-eval")
        assert_same_numbers(getattr(first, key).per_class, getattr(second, key).per_class, "faster-coco-eval")
    difference = ap_difference(first, second)
    assert all(abs(value) < 1e-12 for key in ("box", "mask") for value in difference[key].values())


def test_ap_difference_is_other_minus_reference(tiny_coco, tiny_dataset, gt_masks, perturbed):
    perfect = score_results(gt_as_predictions(tiny_dataset, gt_masks), tiny_coco[0])
    damaged = score_results(perturbed, tiny_coco[0])
    difference = ap_difference(perfect, damaged)
    assert difference["box"]["AP"] == pytest.approx(damaged.box.stats["AP"] - 1.0)
    assert difference["mask"]["AP50"] == pytest.approx(damaged.mask.stats["AP50"] - 1.0)
    assert difference["same_images"]


def test_crowd_regions_and_images_without_annotations(tiny_coco, tiny_dataset, gt_masks, tmp_path):
    """A detection on a crowd region is ignored; one on an image without annotations is a false
    positive (the image is scored); both exactly as pycocotools has it."""
    dataset = copy.deepcopy(tiny_dataset)
    crowd = next(ann for ann in dataset["annotations"] if ann["iscrowd"])
    empty_image = {**dataset["images"][0], "id": 1, "file_name": "empty.jpg"}
    dataset["images"].append(empty_image)
    annotation_file = tmp_path / "instances.json"
    annotation_file.write_text(json.dumps(dataset))
    entries = gt_as_predictions(dataset, gt_masks)
    height, width = crowd["segmentation"]["size"]
    crowd_mask = mask_utils.decode(mask_utils.frPyObjects(crowd["segmentation"], height, width)).astype(bool)
    on_crowd = {"image_id": crowd["image_id"], "category_id": crowd["category_id"], "bbox": crowd["bbox"],
                "score": 1.0, "segmentation": mask_to_rle(crowd_mask)}
    crowd_only = score_results([*entries, on_crowd], annotation_file)
    assert crowd_only.box.stats["AP"] == crowd_only.mask.stats["AP"] == 1.0  # ignored, not a false positive
    same_size = next(entry for entry in entries if entry["image_id"] == dataset["images"][0]["id"])
    on_empty = {**same_size, "image_id": 1, "score": 1.0}
    with_false_positive = score_results([*entries, on_crowd, on_empty], annotation_file)
    assert with_false_positive.box.stats["AP"] < 1.0
    assert with_false_positive.num_images == 81
    for summary, iou_type in ((with_false_positive.box, "bbox"), (with_false_positive.mask, "segm")):
        reference = pycocotools_reference(annotation_file, [*entries, on_crowd, on_empty], iou_type)[0]
        assert_same_numbers(summary.stats, reference, default_backend())


def test_no_detections_scores_zero_and_results_are_not_modified(tiny_coco, perturbed):
    empty = score_results([], tiny_coco[0], backend="pycocotools")
    assert empty.box.stats["AP"] == 0.0 and empty.mask.stats["AR100"] == 0.0
    before = copy.deepcopy(perturbed[:50])
    score_results(perturbed[:50], tiny_coco[0])
    assert perturbed[:50] == before


def test_box_only_results_skip_mask_ap(tiny_coco, perturbed):
    boxes_only = [{key: value for key, value in entry.items() if key != "segmentation"} for entry in perturbed]
    metrics = score_results(boxes_only, tiny_coco[0])
    assert metrics.mask is None and metrics.box is not None
    assert "no mask AP" in metrics.notes[0]


def test_results_of_another_dataset_are_a_clear_error(tiny_coco, perturbed):
    with pytest.raises(MaskbenchError, match="with image 123456789 not in instances_val2017.json .*nothing left"):
        score_results([{**perturbed[0], "image_id": 123456789}], tiny_coco[0])
