"""draw_overlay tints masks in the class colour, leaves the rest alone, and is fast."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maskbench.data.coco_classes import COCO_CLASSES, COCO_PALETTE
from maskbench.pipeline.detections import Detections
from maskbench.report.overlay import CONTOUR_DARKEN, draw_overlay, save_png, side_by_side

H, W = 120, 200
GRAY = 100
CAR = COCO_CLASSES.index("car")
PERSON = COCO_CLASSES.index("person")


def _gray(height: int = H, width: int = W) -> np.ndarray:
    return np.full((height, width, 3), GRAY, np.uint8)


def _dets(boxes, scores, labels, height: int = H, width: int = W) -> Detections:
    """Detections whose masks fill their (integer) boxes."""
    masks = np.zeros((len(boxes), height, width), bool)
    for mask, (x1, y1, x2, y2) in zip(masks, boxes):
        mask[y1:y2, x1:x2] = True
    return Detections(
        np.array(boxes, np.float32).reshape(-1, 4), np.array(scores, np.float32), np.array(labels, np.int64), masks
    )


def _tinted(colour) -> np.ndarray:
    return np.rint(0.5 * GRAY + 0.5 * np.array(colour)).astype(int)


def test_shape_dtype_and_input_untouched():
    image = _gray()
    out = draw_overlay(image, _dets([(60, 50, 140, 110)], [0.9], [CAR]))
    assert out.shape == image.shape and out.dtype == np.uint8
    assert (image == GRAY).all()


def test_mask_interior_is_tinted_toward_class_colour_and_far_pixels_unchanged():
    out = draw_overlay(_gray(), _dets([(60, 50, 140, 110)], [0.9], [CAR]))
    inside = out[80, 100].astype(int)  # mid-mask: away from contour, box and label
    np.testing.assert_allclose(inside, _tinted(COCO_PALETTE[CAR]), atol=1)
    assert (out[:20, 150:] == GRAY).all()  # far from the detection and its label
    assert (out[115:, :40] == GRAY).all()


def test_contour_is_darker_class_colour():
    out = draw_overlay(_gray(), _dets([(60, 50, 140, 110)], [0.9], [PERSON]))
    expected = np.rint(np.array(COCO_PALETTE[PERSON]) * CONTOUR_DARKEN)
    # Row 109 is the mask's last row (its contour); the 1-px box outline is on row 110.
    np.testing.assert_allclose(out[109, 100].astype(int), expected, atol=1)


def test_detections_below_threshold_are_not_drawn():
    image = _gray()
    dets = _dets([(60, 50, 140, 110), (10, 10, 50, 50)], [0.29, 0.1], [CAR, PERSON])
    np.testing.assert_array_equal(draw_overlay(image, dets, score_threshold=0.3), image)
    assert not np.array_equal(draw_overlay(image, dets, score_threshold=0.2), image)


def test_higher_score_is_drawn_on_top_where_masks_overlap():
    dets = _dets([(40, 40, 160, 110), (40, 40, 160, 110)], [0.95, 0.6], [CAR, PERSON])
    out = draw_overlay(_gray(), dets)
    np.testing.assert_allclose(out[90, 100].astype(int), _tinted(COCO_PALETTE[CAR]), atol=1)


def test_label_is_kept_inside_the_image_at_a_corner():
    colour = COCO_PALETTE[PERSON]
    # A tiny detection in the top-right corner: its label cannot go above or to the right.
    out = draw_overlay(_gray(), _dets([(W - 3, 0, W, 3)], [0.9], [PERSON]))
    label_fill = (out == colour).all(axis=2)
    assert label_fill.sum() > 150  # the label's background, not just a 3x3 box
    rows, cols = np.nonzero(label_fill)
    assert rows.min() == 0 and cols.max() == W - 1 and cols.min() < W - 40


def test_title_adds_a_bar_above():
    image = _gray()
    out = draw_overlay(image, _dets([], [], []), title="CAM_FRONT")
    assert out.shape[1:] == image.shape[1:] and out.shape[0] > H
    np.testing.assert_array_equal(out[-H:], image)


def test_side_by_side_resizes_to_the_taller_height():
    left, right = _gray(100, 200), _gray(50, 80)
    combined = side_by_side(left, right, gap=8)
    assert combined.shape == (100, 200 + 8 + 160, 3) and combined.dtype == np.uint8
    titled = side_by_side(left, right, "ours", "mmdet", gap=8)
    assert titled.shape[0] > 100 and titled.shape[1] == 368
    np.testing.assert_array_equal(titled[-100:, :200], left)


def test_save_png_round_trips(tmp_path):
    image = np.random.default_rng(0).integers(0, 256, (30, 40, 3), np.uint8)
    path = save_png(tmp_path / "sub" / "overlay.png", image)
    np.testing.assert_array_equal(np.asarray(Image.open(path)), image)
    assert [p.name for p in path.parent.iterdir()] == ["overlay.png"]


def test_failed_save_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    image = np.zeros((30, 40, 3), np.uint8)
    path = save_png(tmp_path / "overlay.png", image)
    before = path.read_bytes()

    def crash_half_way(self, fp, *args, **kwargs):
        Path(fp).write_bytes(b"\x89PNG\r\n half")
        raise OSError("No space left on device")

    monkeypatch.setattr(Image.Image, "save", crash_half_way)
    for target in (path, tmp_path / "new.png"):
        with pytest.raises(OSError, match="No space left"):
            save_png(target, image + 1)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["overlay.png"]


def test_wrong_inputs_are_value_errors():
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        draw_overlay(_gray().astype(np.float32), _dets([], [], []))
    with pytest.raises(ValueError, match="draw on the original image"):
        draw_overlay(_gray(60, 100), _dets([(0, 0, 10, 10)], [0.9], [CAR]))


def test_100_masks_on_a_1600x900_frame_are_fast():
    rng = np.random.default_rng(0)
    x1, y1 = rng.integers(0, 1400, 100), rng.integers(0, 700, 100)
    boxes = [(x, y, x + int(w), y + int(h))
             for x, y, w, h in zip(x1, y1, rng.integers(20, 200, 100), rng.integers(20, 200, 100))]
    dets = _dets(boxes, np.sort(rng.uniform(0.3, 1.0, 100))[::-1], rng.integers(0, 80, 100), 900, 1600)
    image = np.random.default_rng(1).integers(0, 256, (900, 1600, 3), np.uint8)
    draw_overlay(image, dets)  # warm-up (font, first-touch allocations)
    start = time.perf_counter()
    draw_overlay(image, dets, title="timing")
    assert time.perf_counter() - start < 1.0  # ~0.15 s on 2 CPU cores
