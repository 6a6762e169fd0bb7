"""From network outputs to original-image detections: rescale boxes, paste masks.

Each family's entry names its decoder here: Mask R-CNN's 28x28 box-relative probabilities are
pasted (:func:`paste_box_masks`); RTMDet-Ins' stride-8 logits over the whole padded input are
resized (:func:`resize_stride_masks`, :mod:`maskbench.pipeline.instance_masks`); RF-DETR-Seg's
quarter-resolution logits are resized straight to the original image (:func:`resize_query_masks`).

Mask pasting computes what MMDetection's CPU path computes (``FCNMaskHead._predict_by_feat_single``
with ``skip_empty``): each 28x28 probability map is sampled bilinearly (``grid_sample``,
``align_corners=False``, zero padding) at the pixel centres of a window around its box, then
thresholded at ``mask_thr_binary`` (>=). Bilinear sampling on an axis-aligned grid is separable,
so the window is ``Wy @ probs @ Wx.T`` with two small (window x 28) weight matrices built the way
``grid_sample`` computes its corner weights: two small matmuls per box in numpy instead of a
``grid_sample`` call on a (h, w, 2) grid. Measured on 1600x900 frames with 100 detections: the
same pixels as MMDetection (tests/test_postprocess.py compares with a transcription of its
code), several times faster, and no torch thread pool (whose threads otherwise fight a graph
runtime's spinning ones for the cores).

Each mask is kept as its window (:class:`~maskbench.pipeline.windowed_masks.WindowedMasks`),
not written into an (N, H, W) array of the whole image (144 MB for 100 detections at 1600x900):
such an array's first-touch page faults, and with ``np.zeros`` the kernel's compaction of
transparent huge pages, cost more than the pasting (measured, OpenVINO r50 at 1344x800 on 2
cores: postprocess 15-377 ms per frame with ``np.zeros``, 12-19 ms with a plain mapping;
``tools/mmdet_vs_maskbench.py --time-one``, session 12).

Importing this module does not import torch: :func:`detections_from_outputs` (numpy) is what
both the torch path (:func:`maskbench.models.detector.to_detections`) and the torch-free
deployment run.
"""

from __future__ import annotations

import numpy as np

from ..zoo import FamilyEntry, locate
from .bilinear import direct_axis, logit_cut, threshold_resized
from .blas_threads import one_blas_thread
from .detections import Detections
from .instance_masks import instance_masks
from .preprocess import ImageMeta
from .windowed_masks import WindowedMasks

MASK_SIZE = 28


def rescale_boxes(boxes, meta: ImageMeta, by_reciprocal: bool = False):
    """Resized-image boxes (a tensor or an array, kept in its precision) to original-image
    pixels: divided by the scale factors (Mask R-CNN's bbox head), or multiplied by their
    reciprocals (``scale_boxes`` in RTMDet-Ins' head)."""
    w_scale, h_scale = meta.scale_factor
    factors = [1 / w_scale, 1 / h_scale, 1 / w_scale, 1 / h_scale] if by_reciprocal else [w_scale, h_scale] * 2
    factor = np.asarray(factors, dtype=boxes.dtype) if isinstance(boxes, np.ndarray) else boxes.new_tensor(factors)
    return boxes * factor if by_reciprocal else boxes / factor


def sampling_weights(start: int, stop: int, low: np.float32, high: np.float32, size: int = MASK_SIZE) -> np.ndarray:
    """(stop - start, size) float32 weights that sample a length-``size`` axis at the pixel
    centres ``start + 0.5 .. stop - 0.5`` of a box edge pair ``low..high``, as ``grid_sample``
    (bilinear, ``align_corners=False``, zero padding) does.

    Grid coordinate ``g = (c - low) / (high - low) * 2 - 1`` in float32 as MMDetection writes it
    (a zero-size box gives inf, which MMDetection sets to 0), source index
    ``((g + 1) * size - 1) / 2``, corner weights ``(i0 + 1) - x`` and ``x - i0``; a corner
    outside ``0..size-1`` contributes nothing (zero padding).
    """
    centres = np.arange(start, stop, dtype=np.float32) + np.float32(0.5)
    with np.errstate(divide="ignore", invalid="ignore"):
        grid = (centres - low) / (high - low) * np.float32(2) - np.float32(1)
    grid[np.isinf(grid)] = 0
    source = ((grid + np.float32(1)) * np.float32(size) - np.float32(1)) / np.float32(2)
    valid = np.isfinite(source)  # 0 / 0 (a zero-size box edge on a pixel centre): samples nothing
    source = np.where(valid, source, np.float32(-2))
    first = np.floor(source)
    weight_first, weight_second = (first + np.float32(1)) - source, source - first
    # columns -1 .. size: the two padding columns take the out-of-range corners and are dropped
    weights = np.zeros((len(centres), size + 2), dtype=np.float32)
    rows = np.arange(len(centres))
    index = first.astype(np.int64) + 1
    # the two corners of a row are distinct columns unless both fall into a padding column
    weights[rows, np.clip(index, 0, size + 1)] = weight_first
    weights[rows, np.clip(index + 1, 0, size + 1)] = weight_second
    return weights[:, 1:size + 1]


def paste_window(mask_prob: np.ndarray, box: np.ndarray, img_h: int, img_w: int,
                 threshold: float = 0.5) -> tuple[np.ndarray, tuple[slice, slice]]:
    """Binary mask of one detection on the window it covers, and that window's slices: the
    window is MMDetection's ``[floor(x0) - 1, ceil(x1) + 1)`` clamped to the image."""
    x0, y0, x1, y1 = (np.float32(v) for v in box)
    cols = slice(max(int(np.floor(x0)) - 1, 0), min(int(np.ceil(x1)) + 1, img_w))
    rows = slice(max(int(np.floor(y0)) - 1, 0), min(int(np.ceil(y1)) + 1, img_h))
    if cols.stop <= cols.start or rows.stop <= rows.start:
        return np.zeros((max(rows.stop - rows.start, 0), max(cols.stop - cols.start, 0)), dtype=bool), (rows, cols)
    weights_y = sampling_weights(rows.start, rows.stop, y0, y1)
    weights_x = sampling_weights(cols.start, cols.stop, x0, x1)
    sampled = weights_y @ np.asarray(mask_prob, dtype=np.float32) @ weights_x.T
    return sampled >= np.float32(threshold), (rows, cols)


def paste_masks(mask_probs, boxes, img_h: int, img_w: int, threshold: float = 0.5) -> WindowedMasks:
    """(N, img_h, img_w) bool masks from (N, 28, 28) probabilities and original-image boxes,
    each kept as its window."""
    mask_probs = np.asarray(mask_probs, dtype=np.float32)
    boxes = np.asarray(boxes, dtype=np.float32)
    windows = []
    with one_blas_thread():
        for i in range(boxes.shape[0]):
            window, (rows, cols) = paste_window(mask_probs[i], boxes[i], img_h, img_w, threshold)
            windows.append((i, rows.start, cols.start, window))
    return WindowedMasks.of_windows((boxes.shape[0], img_h, img_w), windows)


def detections_from_outputs(family: FamilyEntry, boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray,
                            masks: np.ndarray, meta: ImageMeta, mask_threshold: float = 0.5) -> Detections:
    """Original-image detections from the network's four outputs (as the exported graph gives
    them), by the family's ``decode`` (e.g. :func:`paste_box_masks`, :func:`resize_stride_masks`)."""
    return locate(family.decode)(boxes, scores, labels, masks, meta, mask_threshold)


def paste_box_masks(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, masks: np.ndarray, meta: ImageMeta,
                    mask_threshold: float = 0.5) -> Detections:
    """Mask R-CNN's decoding: boxes divided by the scale factors in their own precision (a
    double network's in double, as MMDetection's heads do), then each 28x28 probability map
    pasted into its box."""
    original = rescale_boxes(np.asarray(boxes), meta).astype(np.float32)
    img_h, img_w = meta.ori_shape
    return _detections(original, scores, labels, paste_masks(masks, original, img_h, img_w, mask_threshold))


def resize_stride_masks(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, masks: np.ndarray,
                        meta: ImageMeta, mask_threshold: float = 0.5) -> Detections:
    """RTMDet-Ins' decoding: boxes multiplied by the scale factors' reciprocals, the stride-8
    logits over the padded input resized to the original image (:mod:`.instance_masks`)."""
    original = rescale_boxes(np.asarray(boxes), meta, by_reciprocal=True).astype(np.float32)
    binary = instance_masks(np.asarray(masks, dtype=np.float32), meta, threshold=mask_threshold)
    return _detections(original, scores, labels, binary)


def resize_query_masks(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, masks: np.ndarray,
                       meta: ImageMeta, mask_threshold: float = 0.5) -> Detections:
    """RF-DETR-Seg's decoding (rfdetr's ``PostProcess``): boxes from the square input to the
    original image, clamped to it; each (R/4, R/4) mask's logits resized bilinearly straight to
    the original image (in their own precision) and thresholded (0.5: rfdetr's ``> 0``).
    Detections in an unused COCO slot (label -1: no class to be scored with) are dropped."""
    keep = np.flatnonzero(np.asarray(labels) >= 0)
    img_h, img_w = meta.ori_shape
    original = rescale_boxes(np.asarray(boxes)[keep], meta)
    limits = np.asarray([img_w, img_h, img_w, img_h], dtype=original.dtype)
    original = np.minimum(np.maximum(original, 0), limits).astype(np.float32)
    logits = np.asarray(masks)[keep]
    binary = upsample_masks(logits, meta.ori_shape, logit_cut(mask_threshold))
    return _detections(original, np.asarray(scores)[keep], np.asarray(labels)[keep], binary)


def upsample_masks(mask_logits: np.ndarray, original_hw: tuple[int, int], cut: float = 0.0) -> WindowedMasks:
    """(K, h, w) logits -> (K, H, W) bool: ``F.interpolate(bilinear, size=original_hw) > cut``
    (rfdetr's ``_postprocess_masks``), in the logits' precision, each mask on its window only."""
    logits = np.asarray(mask_logits)
    if logits.dtype not in (np.float32, np.float64):
        logits = logits.astype(np.float32)
    height, width = logits.shape[1:]
    return threshold_resized(logits, direct_axis(height, original_hw[0], logits.dtype.name),
                             direct_axis(width, original_hw[1], logits.dtype.name), logits.dtype.type(cut))


def _detections(boxes: np.ndarray, scores, labels, masks: WindowedMasks) -> Detections:
    return Detections(boxes=boxes, scores=np.asarray(scores, dtype=np.float32),
                      labels=np.asarray(labels).astype(np.int64), masks=masks)
