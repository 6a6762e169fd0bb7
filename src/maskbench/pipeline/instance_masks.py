"""RTMDet-Ins masks: stride-8 logits over the padded input -> original-image binary masks.

MMDetection 3.3 (``RTMDetInsHead._bbox_mask_post_process``) upsamples each instance's logits
bilinearly by the stride to the padded input, then bilinearly again to ``ceil(padded size / scale)``,
crops to the original image and thresholds ``sigmoid > mask_thr_binary``. For a 1600x900 frame at
the 640 keep-ratio input that is 1600x1600 values per instance, most outside the image or far
from the object. Both resizes are linear and separable, so each axis is one small weight matrix
(``resize_axis``: the two resizes as PyTorch computes their indices and weights, composed,
cropped, :mod:`.bilinear`): a mask is ``Wy @ logits @ Wx.T``, evaluated only on the window where it
can be positive (:func:`.bilinear.threshold_resized`).
Each mask is kept as its window (:class:`maskbench.pipeline.windowed_masks.WindowedMasks`).

One difference from MMDetection, on purpose: it computes the second size as
``ceil(padded_h / w_scale), ceil(padded_w / h_scale)`` (scale factors in (w, h) order used as
(h, w)). Keep-ratio scales are equal up to rounding, so that formula is kept where it covers the
image (the same pixels); a stretched input (another aspect ratio) would get a mask of the wrong
shape from it, so the axes are taken the right way round there.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from .bilinear import AxisResize, linear_taps, linear_weights, logit_cut, threshold_resized
from .preprocess import ImageMeta
from .windowed_masks import WindowedMasks


@lru_cache(maxsize=32)
def resize_axis(in_len: int, stride: int, resized_len: int, keep: int) -> AxisResize:
    """Upsample by ``stride`` (PyTorch's scale ``1 / stride``), resize to ``resized_len``
    (scale ``in / out``), keep the first ``keep`` outputs (the crop); composed in float64."""
    upsampled = in_len * stride
    first = linear_weights(linear_taps(in_len, upsampled, 1.0 / stride), in_len)
    second_scale = float(np.float32(upsampled) / np.float32(resized_len))
    second = linear_weights(linear_taps(upsampled, resized_len, second_scale), upsampled)
    return AxisResize.of((second[:keep] @ first).astype(np.float32))


def rescaled_size(padded_hw: tuple[int, int], meta: ImageMeta) -> tuple[int, int]:
    """The (h, w) MMDetection resizes the upsampled logits to before cropping (module note)."""
    w_scale, h_scale = meta.scale_factor
    ori_h, ori_w = meta.ori_shape
    as_mmdet = (math.ceil(padded_hw[0] * (1 / w_scale)), math.ceil(padded_hw[1] * (1 / h_scale)))
    if as_mmdet[0] >= ori_h and as_mmdet[1] >= ori_w:
        return as_mmdet
    return math.ceil(padded_hw[0] * (1 / h_scale)), math.ceil(padded_hw[1] * (1 / w_scale))


def instance_masks(mask_logits: np.ndarray, meta: ImageMeta, stride: int = 8,
                   threshold: float = 0.5) -> WindowedMasks:
    """(N, ori_h, ori_w) bool masks from (N, h, w) logits at ``stride`` over the padded input:
    ``sigmoid(resized logits) > threshold``, i.e. resized logits > ``logit(threshold)``."""
    logits = np.asarray(mask_logits, dtype=np.float32)
    count, height, width = logits.shape
    ori_h, ori_w = meta.ori_shape
    if count == 0:
        return WindowedMasks.of_windows((0, ori_h, ori_w), [])
    resized_h, resized_w = rescaled_size((height * stride, width * stride), meta)
    axis_y = resize_axis(height, stride, resized_h, ori_h)
    axis_x = resize_axis(width, stride, resized_w, ori_w)
    cut = np.float32(logit_cut(threshold))
    return threshold_resized(logits, axis_y, axis_x, cut)
