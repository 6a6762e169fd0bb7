"""RTMDet-Ins masks: stride-8 logits over the padded input -> original-image binary masks.

MMDetection 3.3 (``RTMDetInsHead._bbox_mask_post_process``) upsamples each instance's logits
bilinearly by the stride to the padded input, then bilinearly again to ``ceil(padded size / scale)``,
crops to the original image and thresholds ``sigmoid > mask_thr_binary``. For a 1600x900 frame at
the 640 keep-ratio input that is 1600x1600 values per instance, most outside the image or far
from the object. Both resizes are linear and separable, so each axis is one small weight matrix
(``resize_axis``: the two resizes as PyTorch computes their indices and weights, composed,
cropped): a mask is ``Wy @ logits @ Wx.T``. It is evaluated only on the window where it can be
positive: bilinear weights are non-negative, so a pixel whose source logits are all <= 0 is
below the threshold; the window is the span of the rows and columns that reach a positive logit.
The (N, H, W) output is a :class:`maskbench.pipeline.mask_canvas.MaskCanvas`: untouched pages cost
nothing, and written ones are reused from a frame the caller has dropped.

One difference from MMDetection, on purpose: it computes the second size as
``ceil(padded_h / w_scale), ceil(padded_w / h_scale)`` (scale factors in (w, h) order used as
(h, w)). Keep-ratio scales are equal up to rounding, so that formula is kept where it covers the
image (the same pixels); a stretched input (another aspect ratio) would get a mask of the wrong
shape from it, so the axes are taken the right way round there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .mask_canvas import MaskCanvas
from .preprocess import ImageMeta


def _linear_resize(in_len: int, out_len: int, scale: float) -> np.ndarray:
    """(out_len, in_len) float64 weights of PyTorch's bilinear resize along one axis
    (``align_corners=False``): source ``scale * (i + 0.5) - 0.5`` in float32, clamped at 0,
    corners ``floor`` and ``floor + 1`` (the last index repeated at the edge)."""
    dst = np.arange(out_len, dtype=np.float32)
    src = np.maximum(np.float32(scale) * (dst + np.float32(0.5)) - np.float32(0.5), np.float32(0))
    first = np.floor(src).astype(np.int64)
    second = np.where(first < in_len - 1, first + 1, first)
    weight_second = np.clip(src - first, 0, 1).astype(np.float64)
    weights = np.zeros((out_len, in_len), dtype=np.float64)
    rows = np.arange(out_len)
    np.add.at(weights, (rows, first), 1.0 - weight_second)
    np.add.at(weights, (rows, second), weight_second)
    return weights


@dataclass(frozen=True)
class AxisResize:
    """One axis of the mask resize: ``weights`` (outputs x sources) and, precomputed so that a
    mask's window costs no search, the outputs each source reaches (``reach_lo/hi``; sources
    cut off by the crop reach nothing: both = the output count) and the sources each output
    reads (``source_lo/hi``). All ranges are contiguous and grow with the index."""

    weights: np.ndarray
    reach_lo: np.ndarray
    reach_hi: np.ndarray
    source_lo: np.ndarray
    source_hi: np.ndarray


@lru_cache(maxsize=32)
def resize_axis(in_len: int, stride: int, resized_len: int, keep: int) -> AxisResize:
    """Upsample by ``stride`` (PyTorch's scale ``1 / stride``), resize to ``resized_len``
    (scale ``in / out``), keep the first ``keep`` outputs (the crop)."""
    upsampled = in_len * stride
    first = _linear_resize(in_len, upsampled, 1.0 / stride)
    second = _linear_resize(upsampled, resized_len, float(np.float32(upsampled) / np.float32(resized_len)))
    weights = np.ascontiguousarray((second[:keep] @ first).astype(np.float32))
    nonzero = weights != 0
    reached = nonzero.any(axis=0)
    reach_lo = np.where(reached, nonzero.argmax(axis=0), keep)
    reach_hi = np.where(reached, keep - nonzero[::-1].argmax(axis=0), keep)
    source_lo = nonzero.argmax(axis=1)
    source_hi = in_len - nonzero[:, ::-1].argmax(axis=1)
    return AxisResize(weights, reach_lo, reach_hi, source_lo, source_hi)


def rescaled_size(padded_hw: tuple[int, int], meta: ImageMeta) -> tuple[int, int]:
    """The (h, w) MMDetection resizes the upsampled logits to before cropping (module note)."""
    w_scale, h_scale = meta.scale_factor
    ori_h, ori_w = meta.ori_shape
    as_mmdet = (math.ceil(padded_hw[0] * (1 / w_scale)), math.ceil(padded_hw[1] * (1 / h_scale)))
    if as_mmdet[0] >= ori_h and as_mmdet[1] >= ori_w:
        return as_mmdet
    return math.ceil(padded_hw[0] * (1 / h_scale)), math.ceil(padded_hw[1] * (1 / w_scale))


def instance_masks(mask_logits: np.ndarray, meta: ImageMeta, stride: int = 8,
                   threshold: float = 0.5) -> np.ndarray:
    """(N, ori_h, ori_w) bool masks from (N, h, w) logits at ``stride`` over the padded input:
    ``sigmoid(resized logits) > threshold``, i.e. resized logits > ``logit(threshold)``."""
    logits = np.asarray(mask_logits, dtype=np.float32)
    count, height, width = logits.shape
    ori_h, ori_w = meta.ori_shape
    canvas = MaskCanvas((count, ori_h, ori_w))
    if count == 0:
        return canvas.masks
    resized_h, resized_w = rescaled_size((height * stride, width * stride), meta)
    axis_y = resize_axis(height, stride, resized_h, ori_h)
    axis_x = resize_axis(width, stride, resized_w, ori_w)
    cut = np.float32(math.log(threshold / (1 - threshold))) if 0 < threshold < 1 else np.float32(threshold)
    positive = np.greater(logits, cut)
    rows_any: np.ndarray = np.asarray(positive.any(axis=2))
    cols_any: np.ndarray = np.asarray(positive.any(axis=1))
    for i in range(count):
        source_rows, source_cols = np.flatnonzero(rows_any[i]), np.flatnonzero(cols_any[i])
        if source_rows.size == 0:
            continue
        # the window: every output a positive source reaches (elsewhere all sources are <= cut)
        r0, r1 = axis_y.reach_lo[source_rows[0]], axis_y.reach_hi[source_rows[-1]]
        c0, c1 = axis_x.reach_lo[source_cols[0]], axis_x.reach_hi[source_cols[-1]]
        if r1 <= r0 or c1 <= c0:  # positive only in the cropped padding
            continue
        s0, s1 = axis_y.source_lo[r0], axis_y.source_hi[r1 - 1]
        t0, t1 = axis_x.source_lo[c0], axis_x.source_hi[c1 - 1]
        left, source, right = axis_y.weights[r0:r1, s0:s1], logits[i, s0:s1, t0:t1], axis_x.weights[c0:c1, t0:t1].T
        # the cheaper association first: the window is tall and wide, the source small
        if left.shape[0] * source.shape[1] * (source.shape[0] + right.shape[1]) \
                < source.shape[0] * right.shape[1] * (source.shape[1] + left.shape[0]):
            window = (left @ source) @ right
        else:
            window = left @ (source @ right)
        np.greater(window, cut, out=canvas.window(i, slice(r0, r1), slice(c0, c1)))
    return canvas.masks
