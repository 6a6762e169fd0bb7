"""preprocess against MMDetection 3.3's test pipeline and ``DetDataPreprocessor``.

Re-derived from MMDetection 3.3.0:
- ``Resize(scale=(1333, 800), keep_ratio=True)``: mmdet's ``Resize`` subclasses mmcv's and keeps
  its ``_resize_img``, i.e. ``mmcv.imrescale``: ``scale_factor = min(1333 / long, 800 / short)``
  and the new size is ``int(w * sf + 0.5), int(h * sf + 0.5)`` -- rounding. (mmdet's own
  truncating ``imrescale``/``_fixed_scale_size`` in the same file serves only ``FixScaleResize``;
  MMDetection 3.3 run on a 1600x900 frame gives img_shape (750, 1333).) The image is resized with
  ``cv2.resize(..., INTER_LINEAR)``;
  ``scale_factor = (new_w / w, new_h / h)``, ``img_shape = (new_h, new_w)``.
- ``keep_ratio=False`` (a fixed 1344x800 input): ``mmcv.imresize(img, (1344, 800))``,
  ``scale_factor = (1344 / w, 800 / h)``.
- ``DetDataPreprocessor``: BGR -> RGB, ``float()``, ``(x - mean) / std`` with the RGB mean/std,
  then zero-padding on the right/bottom to a multiple of 32 (``pad_value=0`` after normalising).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from maskbench.models.inputs import preprocess
from maskbench.pipeline.preprocess import ResizeMode, resized_size

MEAN = (123.675, 116.28, 103.53)
STD = (58.395, 57.12, 57.375)


def _mmdet33_keep_ratio_size(w: int, h: int, scale=(1333, 800)) -> tuple[int, int]:
    """mmcv ``rescale_size`` as mmdet 3.3's ``Resize`` uses it (rounds with +0.5)."""
    scale_factor = min(max(scale) / max(h, w), min(scale) / min(h, w))
    return int(w * float(scale_factor) + 0.5), int(h * float(scale_factor) + 0.5)


def _mmdet_normalise_and_pad(resized_bgr: np.ndarray) -> torch.Tensor:
    """DetDataPreprocessor on one image: to tensor (C, H, W), bgr->rgb, float, normalise, pad /32."""
    img = torch.from_numpy(np.ascontiguousarray(resized_bgr.transpose(2, 0, 1)))
    img = img[[2, 1, 0], ...].float()
    img = (img - torch.tensor(MEAN).view(-1, 1, 1)) / torch.tensor(STD).view(-1, 1, 1)
    h, w = img.shape[-2:]
    pad_h, pad_w = int(np.ceil(h / 32)) * 32, int(np.ceil(w / 32)) * 32
    img = torch.nn.functional.pad(img, (0, pad_w - w, 0, pad_h - h), value=0)
    return img.unsqueeze(0)


def _random_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def nuscenes_like() -> np.ndarray:
    return _random_image(900, 1600, seed=1)


# ----------------------------------------------------------------------------- stretch
def test_stretch_1600x900_shapes_and_scale(nuscenes_like):
    tensor, meta = preprocess(nuscenes_like, ResizeMode.STRETCH)
    assert meta.ori_shape == (900, 1600)
    assert meta.img_shape == (800, 1344)
    assert meta.pad_shape == (800, 1344)
    assert meta.scale_factor == (1344 / 1600, 800 / 900)
    assert meta.scale_factor[0] == pytest.approx(0.84)
    assert meta.scale_factor[1] == pytest.approx(0.888889, abs=1e-6)
    assert tensor.shape == (1, 3, 800, 1344) and tensor.dtype == torch.float32


def test_stretch_pixels_equal_cv2_resize_then_mmdet_normalisation(nuscenes_like):
    tensor, _ = preprocess(nuscenes_like, ResizeMode.STRETCH)
    bgr = nuscenes_like[..., ::-1]  # what LoadImageFromFile gives MMDetection
    expected = _mmdet_normalise_and_pad(cv2.resize(bgr, (1344, 800), interpolation=cv2.INTER_LINEAR))
    assert torch.equal(tensor, expected)


def test_normalisation_uses_rgb_mean_std():
    img = np.empty((40, 60, 3), dtype=np.uint8)
    img[..., 0], img[..., 1], img[..., 2] = 200, 100, 50  # R, G, B
    tensor, _ = preprocess(img, ResizeMode.STRETCH, input_size=(64, 32))
    expected = [(200 - 123.675) / 58.395, (100 - 116.28) / 57.12, (50 - 103.53) / 57.375]
    for c in range(3):
        torch.testing.assert_close(tensor[0, c], torch.full((32, 64), expected[c]), rtol=0, atol=1e-6)
    assert expected[0] == pytest.approx(1.307047, abs=1e-6)


# ----------------------------------------------------------------------------- keep ratio
def test_keep_ratio_padding_is_zero_after_normalisation():
    img = _random_image(30, 50, seed=2) // 2 + 100  # no pixel normalises to 0
    tensor, meta = preprocess(img, ResizeMode.KEEP_RATIO, input_size=(100, 60))  # sf = min(2, 2) = 2
    assert meta.img_shape == (60, 100) and meta.pad_shape == (64, 128)
    assert tensor.shape == (1, 3, 64, 128)
    assert torch.count_nonzero(tensor[..., 60:, :]) == 0
    assert torch.count_nonzero(tensor[..., :, 100:]) == 0
    assert bool((tensor[..., :60, :100] != 0).all())
    expected = _mmdet_normalise_and_pad(cv2.resize(img[..., ::-1], (100, 60), interpolation=cv2.INTER_LINEAR))
    assert torch.equal(tensor, expected)


def test_keep_ratio_exact_scale():
    # 2666 x 1000: sf = min(1333 / 2666, 800 / 1000) = 0.5 exactly -> 1333 x 500
    img = _random_image(1000, 2666, seed=3)
    assert _mmdet33_keep_ratio_size(2666, 1000) == (1333, 500)
    tensor, meta = preprocess(img, ResizeMode.KEEP_RATIO)
    assert meta.img_shape == (500, 1333)
    assert meta.pad_shape == (512, 1344)
    assert meta.scale_factor == (0.5, 0.5)
    expected = _mmdet_normalise_and_pad(cv2.resize(img[..., ::-1], (1333, 500), interpolation=cv2.INTER_LINEAR))
    assert torch.equal(tensor, expected)


def test_keep_ratio_1600x900_pad_shape(nuscenes_like):
    _, meta = preprocess(nuscenes_like, ResizeMode.KEEP_RATIO)
    assert meta.ori_shape == (900, 1600)
    assert meta.pad_shape == (768, 1344)
    assert meta.img_shape[1] == 1333


def test_keep_ratio_pixels_equal_cv2_resize_at_own_size(nuscenes_like):
    """Whatever size it picks, the pixels are cv2 INTER_LINEAR + MMDetection normalisation."""
    tensor, meta = preprocess(nuscenes_like, ResizeMode.KEEP_RATIO)
    h, w = meta.img_shape
    expected = _mmdet_normalise_and_pad(cv2.resize(nuscenes_like[..., ::-1], (w, h), interpolation=cv2.INTER_LINEAR))
    assert torch.equal(tensor, expected)
    assert meta.scale_factor == (w / 1600, h / 900)


def test_keep_ratio_1600x900_matches_mmdet33(nuscenes_like):
    assert _mmdet33_keep_ratio_size(1600, 900) == (1333, 750)  # 900 * 0.833125 = 749.8125
    tensor, meta = preprocess(nuscenes_like, ResizeMode.KEEP_RATIO)
    assert meta.img_shape == (750, 1333)
    assert meta.scale_factor == (1333 / 1600, 750 / 900)
    expected = _mmdet_normalise_and_pad(
        cv2.resize(nuscenes_like[..., ::-1], (1333, 750), interpolation=cv2.INTER_LINEAR))
    assert torch.equal(tensor, expected)


@pytest.mark.parametrize("wh", [(1600, 900), (640, 480), (1280, 720), (1000, 750)])
def test_resized_size_matches_mmdet33(wh):
    w, h = wh
    assert resized_size(h, w, ResizeMode.KEEP_RATIO, (1333, 800)) == _mmdet33_keep_ratio_size(w, h)


@pytest.mark.parametrize("wh", [(640, 425), (2666, 1000), (1333, 800), (800, 1333), (666, 400)])
def test_resized_size_more_sizes(wh):
    w, h = wh
    assert resized_size(h, w, ResizeMode.KEEP_RATIO, (1333, 800)) == _mmdet33_keep_ratio_size(w, h)


def test_stretch_size_is_given_size():
    assert resized_size(900, 1600, ResizeMode.STRETCH, (1344, 800)) == (1344, 800)
