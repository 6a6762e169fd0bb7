"""Detections files read back into Detections; the overlay pair and its fallbacks."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from synthetic_bench import FRAME_H, FRAME_W, make_record, square_detections, write_detections_file, write_frames

from maskbench.pipeline.coco_results import detections_to_coco
from maskbench.report.detections_file import load_detections_file, results_to_detections
from maskbench.report.side_by_side import choose_pair, write_side_by_side
from maskbench.utils.errors import MaskbenchError


def test_detections_survive_the_file(tmp_path):
    dets = square_detections([(34, 10, 60, 44), (4, 4, 30, 30)], [0.6, 0.9], [0, 2])
    loaded = results_to_detections(detections_to_coco(dets, 1), FRAME_H, FRAME_W)
    order = [1, 0]  # read back best first
    np.testing.assert_array_equal(loaded.masks, dets.masks[order])
    np.testing.assert_allclose(loaded.boxes, dets.boxes[order])
    np.testing.assert_array_equal(loaded.labels, dets.labels[order])
    np.testing.assert_allclose(loaded.scores, dets.scores[order])


def test_loader_reads_the_worker_format(tmp_path):
    frames = write_frames(tmp_path / "frames")
    record = make_record("r101")
    write_detections_file(tmp_path, record, frames)
    loaded = load_detections_file(tmp_path / record.detections_file)
    assert [f.path for f in loaded] == [str(p) for p in frames]
    assert loaded[0].camera == "CAM_FRONT" and loaded[1].camera is None
    assert all(len(f.detections) == 2 and f.detections.masks.shape == (2, FRAME_H, FRAME_W) for f in loaded)


def test_empty_frames_and_bad_files(tmp_path):
    assert results_to_detections([], FRAME_H, FRAME_W).masks.shape == (0, FRAME_H, FRAME_W)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"frames": [{"path": "x"}]}))
    with pytest.raises(MaskbenchError, match="not a maskbench detections file"):
        load_detections_file(bad)
    with pytest.raises(MaskbenchError, match="missing"):
        load_detections_file(tmp_path / "absent.json")


def _with_detections(*aliases):
    records = [make_record(alias) for alias in aliases]
    for record in records:
        record.detections_file = f"detections/{record.alias}.json"
    return records


def test_pair_by_alias_in_the_asked_order():
    records = _with_detections("r50", "r101", "convnext-t")
    (left, right), notes = choose_pair(records)
    assert (left.alias, right.alias, notes) == ("convnext-t", "r101", [])
    (left, right), _ = choose_pair(records, ("r101", "mask-rcnn_r50_fpn_1x_coco"))  # zoo name works too
    assert (left.alias, right.alias) == ("r101", "r50")


def test_pair_falls_back_to_the_first_two_ok_models_and_says_so():
    records = [make_record("swin-t", status="failed", error="x")] + _with_detections("x101", "s101", "convnext-t")
    (left, right), notes = choose_pair(records)
    assert (left.alias, right.alias) == ("x101", "s101")
    assert len(notes) == 1 and "r101" in notes[0] and "x101 vs s101" in notes[0]


def test_pair_skipped_with_fewer_than_two_models():
    pair, notes = choose_pair(_with_detections("r101") + [make_record("x101")])  # x101: no detections file
    assert pair is None and "skipped" in notes[0] and "1 model" in notes[0]


def test_side_by_side_pngs_hold_both_models(tmp_path):
    frames = write_frames(tmp_path / "frames", count=3)
    records = [make_record("r101"), make_record("convnext-t")]
    for shift, record in enumerate(records):
        write_detections_file(tmp_path / "bench", record, frames, shift=shift)
    result = write_side_by_side(records, tmp_path / "bench", tmp_path / "out", max_frames=2)
    assert len(result.files) == 2 and "first 2 of 3" in result.notes[-1]
    with Image.open(result.files[0]) as picture:
        assert picture.width > 2 * FRAME_W and picture.height > FRAME_H  # two panels plus title bars


def test_missing_frame_is_a_note_not_a_crash(tmp_path):
    frames = write_frames(tmp_path / "frames")
    records = [make_record("r101"), make_record("convnext-t")]
    for record in records:
        write_detections_file(tmp_path / "bench", record, frames)
    frames[0].unlink()
    result = write_side_by_side(records, tmp_path / "bench", tmp_path / "out")
    assert len(result.files) == 1 and any(str(frames[0]) in note for note in result.notes)
