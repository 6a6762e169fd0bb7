"""Masks kept as windows: the same masks as the whole-image arrays, and what consumers read."""

from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from maskbench.pipeline.coco_results import detections_to_coco
from maskbench.pipeline.detections import Detections
from maskbench.pipeline.windowed_masks import WindowedMasks


def _windows() -> tuple[WindowedMasks, np.ndarray]:
    rng = np.random.default_rng(0)
    dense = np.zeros((4, 30, 40), dtype=bool)
    windows = []
    for index, (top, left, height, width) in enumerate([(0, 0, 30, 40), (5, 7, 10, 3), (29, 39, 1, 1)]):
        crop = rng.random((height, width)) > 0.5
        dense[index, top:top + height, left:left + width] = crop
        windows.append((index, top, left, crop))
    return WindowedMasks.of_windows(dense.shape, windows), dense  # mask 3: no window, empty


def test_windows_are_the_whole_image_masks():
    masks, dense = _windows()
    assert np.array_equal(masks.dense(), dense)
    assert all(np.array_equal(masks.full(i), dense[i]) for i in range(4))
    assert [plane.copy(order="F").tolist() for plane in masks.planes()] == dense.astype(np.uint8).tolist()
    assert masks.areas().tolist() == dense.sum(axis=(1, 2)).tolist()
    assert np.array_equal(masks.take(np.array([2, 0])).dense(), dense[[2, 0]])
    assert np.array_equal(masks.take(np.array([False, True, False, True])).dense(), dense[[1, 3]])


def test_a_window_outside_the_image_is_refused():
    with pytest.raises(ValueError, match="outside the 30x40 image"):
        WindowedMasks.of_windows((1, 30, 40), [(0, 25, 0, np.ones((6, 2), dtype=bool))])


def test_detections_keep_windows_and_build_the_array_once():
    masks, dense = _windows()
    dets = Detections(np.zeros((4, 4), np.float32), np.array([0.9, 0.8, 0.7, 0.6], np.float32),
                      np.arange(4), masks)
    assert np.array_equal(dets.masks, dense) and dets.masks is dets.masks
    top = dets.above(0.75)
    assert len(top) == 2 and np.array_equal(top.masks, dense[:2])
    given = Detections(dets.boxes, dets.scores, dets.labels, dense)
    assert given.masks is dense and np.array_equal(given.windows.dense(), dense)


def test_coco_rle_of_windows_is_that_of_the_whole_masks():
    masks, dense = _windows()
    dets = Detections(np.zeros((4, 4), np.float32), np.ones(4, np.float32), np.zeros(4, np.int64), masks)
    entries = detections_to_coco(dets, image_id=1)
    decoded = [mask_utils.decode({**e["segmentation"], "counts": e["segmentation"]["counts"].encode()})
               for e in entries]
    assert np.array_equal(np.stack(decoded).astype(bool), dense)


def test_an_overlay_of_windows_is_that_of_the_whole_masks():
    from maskbench.report.overlay import draw_overlay

    masks, dense = _windows()
    image = np.random.default_rng(1).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    boxes = np.array([[0, 0, 40, 30], [7, 5, 10, 15], [39, 29, 40, 30], [0, 0, 1, 1]], np.float32)
    scores, labels = np.array([0.9, 0.8, 0.7, 0.6], np.float32), np.array([0, 1, 2, 3])
    windowed = draw_overlay(image, Detections(boxes, scores, labels, masks))
    assert np.array_equal(windowed, draw_overlay(image, Detections(boxes, scores, labels, dense)))
    assert not np.array_equal(windowed, image)


def test_overlap_of_windows_is_that_of_the_whole_masks():
    from maskbench.verify.compare import overlap

    first, dense = _windows()
    rng = np.random.default_rng(2)
    shifted = np.zeros_like(dense)
    windows = []
    for index, (top, left, height, width) in enumerate([(3, 4, 20, 30), (0, 30, 10, 10), (0, 0, 2, 2)]):
        crop = rng.random((height, width)) > 0.4
        shifted[index, top:top + height, left:left + width] = crop
        windows.append((index, top, left, crop.astype(np.uint8) * 255))  # any non-zero value is a mask pixel
    second = WindowedMasks.of_windows(dense.shape, windows)
    for i in range(4):
        for j in range(4):
            expected = (int((dense[i] & shifted[j]).sum()), int((dense[i] | shifted[j]).sum()))
            assert overlap(first, i, second, j) == expected, (i, j)
    with pytest.raises(ValueError, match="cannot be compared"):
        overlap(first, 0, WindowedMasks.of_windows((1, 30, 41), []), 0)
