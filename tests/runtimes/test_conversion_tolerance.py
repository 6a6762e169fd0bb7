"""The conversion check's verdicts per precision, on synthetic rows (no model: milliseconds)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from maskbench.pipeline.detections import Detections
from maskbench.verify.check_row import CheckRow
from maskbench.verify.compare import pair_differences
from maskbench.verify.results_file import write_json
from maskbench.verify.tolerances import TOLERANCES, close_pairs


def _row(precision="fp32", matched=100, close=100, candidates=100, mean_iou=0.999) -> CheckRow:
    return CheckRow(model="swin-t", runtime="tensorrt", precision=precision, image="f.jpg", camera="CAM_FRONT",
                    mode="stretch", input_hw=(800, 1344), reference_count=100, candidate_count=candidates,
                    matched=matched, max_box_diff=0.1, max_score_diff=1e-3, min_mask_iou=0.9, mean_mask_iou=mean_iou,
                    area_weighted_mask_iou=0.99, close_pairs=close, eager_ms=1.0, runtime_ms=1.0)


def test_fp32_keeps_the_strict_rule():
    assert _row().agrees and _row(close=98).agrees
    assert not _row(close=97).agrees  # 3 flips
    assert not _row(matched=99, close=99).agrees  # one detection lost
    assert not _row(mean_iou=0.98).agrees
    assert "the conversion changes 3 of 100 detections" in _row(close=97).verdict()
    assert _row().verdict() is None


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_reduced_precision_is_looser_and_says_when_it_breaks_the_model(precision):
    assert _row(precision, matched=96, close=90, candidates=100, mean_iou=0.96).agrees  # 10 changed: allowed
    broken = _row(precision, matched=90, close=85, mean_iou=0.96)
    assert not broken.agrees and broken.changed == 15
    line = broken.verdict()
    assert line.startswith(f"swin-t on tensorrt, frame CAM_FRONT: {precision} changes 15 of 100 detections")
    assert "this precision breaks the model at these tolerances" in line and "\n" not in line
    assert not _row(precision, mean_iou=0.94).agrees
    assert broken.as_dict()["changed"] == 15 and broken.as_dict()["precision"] == precision


def test_close_pairs_follow_the_precision_tolerance():
    boxes = np.array([[0, 0, 40, 40], [50, 0, 90, 40]], np.float32)
    masks = np.zeros((2, 60, 100), bool)
    masks[0, 0:40, 0:40] = masks[1, 0:40, 50:90] = True
    reference = Detections(boxes, np.array([0.9, 0.8], np.float32), np.array([1, 1]), masks)
    moved = boxes + np.array([[1.0, 0, 1.0, 0], [0, 0, 0, 0]], np.float32)  # the first box 1 px to the right
    candidate = Detections(moved, reference.scores, reference.labels, masks)
    differences = pair_differences(reference, candidate)
    assert close_pairs(differences, TOLERANCES["fp32"]) == 1  # 1 px > 0.5 px
    assert close_pairs(differences, TOLERANCES["fp16"]) == 2  # within 2 px


def test_results_file_round_trips_and_a_failed_write_leaves_nothing(tmp_path):
    path = write_json([_row()], tmp_path / "check.json", {"torch_threads": np.int64(2)})
    assert json.loads(path.read_text())["info"] == {"torch_threads": 2}
    with pytest.raises(TypeError):
        write_json([_row()], tmp_path / "other.json", {"threads": object()})
    assert [p.name for p in tmp_path.iterdir()] == ["check.json"]
