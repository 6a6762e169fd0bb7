"""RTMDet-Ins mask post-processing against a transcription of MMDetection 3.3's
``RTMDetInsHead._bbox_mask_post_process`` (two ``F.interpolate`` calls, crop, sigmoid > 0.5)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from maskbench.models.inputs import preprocess
from maskbench.pipeline.bilinear import mask_windows
from maskbench.pipeline.instance_masks import instance_masks, rescaled_size, resize_axis
from maskbench.utils.names import ResizeMode
from maskbench.zoo import RTMDET_INPUT


def mmdet_masks(logits: torch.Tensor, meta, stride: int = 8, axes_as_mmdet: bool = True) -> np.ndarray:
    """MMDetection's code path, written out (``axes_as_mmdet=False``: the axes the right way round)."""
    upsampled = F.interpolate(logits.unsqueeze(0), scale_factor=stride, mode="bilinear")
    scale_factor = [1 / s for s in meta.scale_factor]
    if not axes_as_mmdet:
        scale_factor = scale_factor[::-1]
    ori_h, ori_w = meta.ori_shape
    size = [math.ceil(upsampled.shape[-2] * scale_factor[0]), math.ceil(upsampled.shape[-1] * scale_factor[1])]
    resized = F.interpolate(upsampled, size=size, mode="bilinear", align_corners=False)[..., :ori_h, :ori_w]
    return (resized.sigmoid().squeeze(0) > 0.5).numpy()


def smooth_logits(count: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    """Blob-like logits (positive regions of many sizes), as a trained head gives."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.randn(count, 1, max(height // 6, 2), max(width // 6, 2), generator=generator)
    field = F.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)[:, 0]
    return field * 4 - torch.linspace(0, 3, count).view(-1, 1, 1)  # some masks small, one empty-ish


@pytest.mark.parametrize("ori_hw", [(900, 1600), (427, 640), (480, 640), (333, 500)])
def test_same_pixels_as_mmdetection_keep_ratio(ori_hw):
    image = np.zeros((*ori_hw, 3), dtype=np.uint8)
    _, meta = preprocess(image, ResizeMode.KEEP_RATIO, None, RTMDET_INPUT)
    assert meta.pad_shape == (640, 640)
    logits = smooth_logits(12, 80, 80)
    ours = instance_masks(logits.numpy(), meta).dense()
    expected = mmdet_masks(logits, meta)
    assert ours.shape == expected.shape == (12, *ori_hw)
    assert expected.any()
    # The only differences possible: logits within float32 rounding of the threshold.
    assert (ours != expected).sum() <= 1e-6 * expected.size


def test_stretch_takes_the_axes_the_right_way_round():
    image = np.zeros((900, 1600, 3), dtype=np.uint8)
    _, meta = preprocess(image, ResizeMode.STRETCH, None, RTMDET_INPUT)
    assert meta.img_shape == (640, 640)
    assert rescaled_size((640, 640), meta) == (900, 1600)  # MMDetection's formula: 1600 x 900
    logits = smooth_logits(6, 80, 80, seed=1)
    ours = instance_masks(logits.numpy(), meta).dense()
    expected = mmdet_masks(logits, meta, axes_as_mmdet=False)
    assert ours.shape == expected.shape == (6, 900, 1600)
    assert (ours != expected).sum() <= 1e-6 * expected.size
    assert mmdet_masks(logits, meta).shape != ours.shape  # what MMDetection itself would return


def test_all_negative_logits_give_empty_masks_and_no_writes():
    _, meta = preprocess(np.zeros((900, 1600, 3), dtype=np.uint8), ResizeMode.KEEP_RATIO, None, RTMDET_INPUT)
    masks = instance_masks(-np.ones((3, 80, 80), dtype=np.float32), meta).dense()
    assert masks.shape == (3, 900, 1600) and not masks.any()
    assert instance_masks(np.zeros((0, 80, 80), dtype=np.float32), meta).dense().shape == (0, 900, 1600)


def test_logits_positive_only_in_the_padding_give_empty_masks():
    _, meta = preprocess(np.zeros((900, 1600, 3), dtype=np.uint8), ResizeMode.KEEP_RATIO, None, RTMDET_INPUT)
    logits = -np.ones((2, 80, 80), dtype=np.float32)
    logits[:, 60:, :] = 5.0  # rows 480.. of the 640 padded input: below the 360 image rows
    expected = mmdet_masks(torch.from_numpy(logits), meta)
    assert not expected.any()
    assert not instance_masks(logits, meta).dense().any()


@pytest.mark.parametrize("mode", [ResizeMode.STRETCH, ResizeMode.KEEP_RATIO])
def test_scattered_masks_in_bands_give_mmdetections_pixels(mode):
    """Masks positive here and there over the whole frame (as random weights give) make windows
    of ~1 M outputs over many sources; their second product goes band by band (over rows or
    columns, whichever the window resizes second), with the same pixels as MMDetection."""
    _, meta = preprocess(np.zeros((900, 1600, 3), dtype=np.uint8), mode, None, RTMDET_INPUT)
    logits = torch.randn(8, 80, 80, generator=torch.Generator().manual_seed(3)) * 2 - 3.5  # ~3 % positive
    logits[4:, :, 40:] = -9.0  # half the masks on the left half only
    logits[6:, 40:, :] = -9.0  # two of them on the top half too
    ours = instance_masks(logits.numpy(), meta).dense()
    expected = mmdet_masks(logits, meta, axes_as_mmdet=mode is ResizeMode.KEEP_RATIO)
    assert expected.any() and (ours != expected).sum() <= 1e-6 * expected.size

    resized_h, resized_w = rescaled_size((640, 640), meta)
    windows = mask_windows(logits.numpy() > 0, resize_axis(80, 8, resized_h, 900), resize_axis(80, 8, resized_w, 1600))
    assert all(band for *_, band in windows.rows)
    if mode is ResizeMode.KEEP_RATIO:  # rows resized first for some windows, columns for others
        assert {left_first for *_, left_first, _ in windows.rows} == {True, False}
