"""The reused mask arrays: a dropped frame's mapping comes back all False, a held one is never
reused, and the pool stays bounded."""

import gc

import numpy as np
import pytest

from maskbench.pipeline import mask_canvas
from maskbench.pipeline.mask_canvas import POOL_SIZE, MaskCanvas


@pytest.fixture(autouse=True)
def empty_pool(monkeypatch):
    monkeypatch.setattr(mask_canvas, "_POOL", [])


def _address(array: np.ndarray) -> int:
    return array.__array_interface__["data"][0]


def _written(shape, seed: int) -> np.ndarray:
    """Masks with a random window set in each, written through the canvas as post-processing does."""
    rng = np.random.default_rng(seed)
    canvas = MaskCanvas(shape)
    for i in range(shape[0]):
        r0, c0 = rng.integers(0, shape[1] - 1), rng.integers(0, shape[2] - 1)
        rows, cols = slice(r0, rng.integers(r0 + 1, shape[1] + 1)), slice(c0, rng.integers(c0 + 1, shape[2] + 1))
        canvas.window(i, rows, cols)[...] = rng.random((rows.stop - rows.start, cols.stop - cols.start)) > 0.3
    return canvas.masks


def test_a_dropped_frames_mapping_comes_back_all_false():
    first = _written((5, 40, 60), seed=0)
    address = _address(first)
    assert first.sum() > 0
    del first
    second = MaskCanvas((5, 40, 60)).masks
    assert _address(second) == address and not second.any()


def test_a_smaller_frame_reuses_a_larger_mapping_and_a_larger_one_gets_its_own():
    big = _written((6, 50, 70), seed=1)
    address = _address(big)
    del big
    small = _written((3, 30, 90), seed=2)  # another shape over the same bytes: cleared by the old shape
    assert _address(small) == address
    del small
    again = MaskCanvas((6, 50, 70)).masks
    assert _address(again) == address and not again.any()
    del again
    larger = MaskCanvas((8, 50, 70)).masks
    assert not larger.any() and larger.shape == (8, 50, 70) and len(mask_canvas._POOL) == 2


def test_masks_still_held_are_never_reused_and_keep_their_pixels():
    held = [_written((4, 32, 32), seed=seed) for seed in range(POOL_SIZE + 2)]
    copies = [masks.copy() for masks in held]
    assert len({_address(masks) for masks in held}) == len(held)
    assert len(mask_canvas._POOL) == POOL_SIZE
    view = held[0][1]  # a view keeps its frame's mapping in use
    del held[0]
    gc.collect()
    fresh = _written((4, 32, 32), seed=99)
    assert _address(fresh) != _address(view)
    for masks, copy in zip(held, copies[1:]):
        assert np.array_equal(masks, copy)
    assert np.array_equal(view, copies[0][1])


def test_empty_frames_need_no_mapping():
    masks = MaskCanvas((0, 900, 1600)).masks
    assert masks.shape == (0, 900, 1600) and not mask_canvas._POOL
