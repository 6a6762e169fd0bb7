import numpy as np

from maskbench.pipeline.detections import Detections
from maskbench.verify.compare import agreement_of, box_iou, compare_detections, match_detections, pair_differences


def _dets(boxes, scores, labels, size=(20, 30)):
    boxes = np.array(boxes, dtype=np.float32)
    masks = np.zeros((len(boxes), *size), dtype=bool)
    for k, (x1, y1, x2, y2) in enumerate(boxes.astype(int)):
        masks[k, y1:y2, x1:x2] = True
    return Detections(boxes, np.array(scores, np.float32), np.array(labels, np.int64), masks)


def test_box_iou_hand_values():
    iou = box_iou(np.array([[0, 0, 10, 10.]]), np.array([[5, 0, 15, 10.], [20, 20, 30, 30.]]))
    np.testing.assert_allclose(iou, [[50 / 150, 0.0]])


def test_identical_detections_agree_perfectly():
    a = _dets([[0, 0, 10, 10], [5, 5, 20, 15]], [0.9, 0.8], [1, 2])
    agreement = compare_detections(a, a)
    assert agreement.matched == 2 and agreement.max_box_diff == 0 and agreement.area_weighted_mask_iou == 1


def test_matching_needs_same_class_and_reports_differences():
    ref = _dets([[0, 0, 10, 10], [5, 5, 20, 15]], [0.9, 0.8], [1, 2])
    cand = _dets([[0, 0, 10, 12], [5, 5, 20, 15]], [0.88, 0.8], [1, 3])
    agreement = compare_detections(ref, cand)
    assert match_detections(ref, cand) == [(0, 0)]
    assert agreement.matched == 1
    assert agreement.max_box_diff == 2 and abs(agreement.max_score_diff - 0.02) < 1e-6
    assert abs(agreement.min_mask_iou - 100 / 120) < 1e-9


def test_area_weighting_discounts_tiny_masks():
    ref = _dets([[0, 0, 20, 20], [25, 0, 26, 1]], [0.9, 0.8], [1, 1], size=(20, 30))
    cand = _dets([[0, 0, 20, 20], [25, 0, 26, 1]], [0.9, 0.8], [1, 1], size=(20, 30))
    cand.masks[1, 0, 25] = False  # the 1-pixel mask is lost entirely
    agreement = compare_detections(ref, cand)
    assert agreement.min_mask_iou == 0.0
    assert agreement.area_weighted_mask_iou == 400 / 401


def test_identical_zero_area_boxes_match():
    ref = _dets([[0, 3, 0, 16], [2, 2, 8, 8]], [0.9, 0.8], [4, 4])
    agreement = compare_detections(ref, ref)
    assert agreement.matched == 2
    assert box_iou(np.array([[0, 3, 0, 16.]]), np.array([[0, 4, 0, 16.]]))[0, 0] == 0


def test_pair_differences_are_what_the_agreement_summarises():
    ref = _dets([[0, 0, 10, 10], [5, 5, 20, 15], [0, 0, 4, 4]], [0.9, 0.8, 0.7], [1, 2, 3])
    cand = _dets([[0, 0, 10, 12], [5, 5, 20, 15]], [0.88, 0.8], [1, 2])
    diffs = pair_differences(ref, cand)
    assert diffs.pairs == [(0, 0), (1, 1)]
    np.testing.assert_allclose(diffs.box_diff, [2.0, 0.0])
    np.testing.assert_allclose(diffs.score_diff, [0.02, 0.0], atol=1e-6)
    np.testing.assert_allclose(diffs.mask_iou, [100 / 120, 1.0])
    agreement = compare_detections(ref, cand)
    assert agreement == agreement_of(diffs, 3, 2)
    assert (agreement.matched, agreement.max_box_diff, agreement.min_mask_iou) == (2, 2.0, diffs.mask_iou.min())
    assert pair_differences(ref, _dets(np.zeros((0, 4)), [], [])).pairs == []
    assert compare_detections(ref, _dets(np.zeros((0, 4)), [], [])).matched == 0


def test_zero_area_boxes_match_within_last_bits_only():
    # float64 runs on two CPUs: the same border-clipped box, 1e-11 px apart (measured, ResNeSt)
    box = np.array([[435.69220379, 0.0, 461.85823337, 0.0]])
    assert box_iou(box, box + 2.6e-11)[0, 0] == 1.0
    assert box_iou(box, box + np.array([[0.0, 0.0, 0.0, 0.5]]))[0, 0] == 0.0  # a real (0.5 px) difference
