"""RF-DETR-Seg pre- and post-processing as rfdetr 1.11.2's ``predict`` does it.

Pre: RGB, scaled to [0, 1] (division by 255), stretched to the square resolution (bilinear,
no antialias), normalised with ImageNet's mean and std. Post (rfdetr's ``PostProcess``): sigmoid
scores, the top ``num_select`` of all (query, class) pairs (stable descending sort), cxcywh ->
xyxy scaled to the original image and clamped to it; each selected query's quarter-resolution
mask logits resized bilinearly straight to the original image and thresholded at > 0.

The mask resize is the RTMDet-Ins trap again (100-300 masks at 1600x900): it is separable and
its weights are non-negative, so a pixel can be positive only where some source logit it reads
is; :func:`upsample_masks` computes each mask only on that window, as two small matrix products
with PyTorch's own bilinear indices and weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor

from ...data.coco_classes import COCO_CATEGORY_IDS
from ...pipeline.detections import Detections
from ...pipeline.mask_canvas import MaskCanvas
from .model import RawOutputs

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def preprocess(image_rgb: np.ndarray, resolution: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """(H, W, 3) uint8 RGB -> (1, 3, R, R) normalised input."""
    chw = torch.from_numpy(np.ascontiguousarray(image_rgb)).permute(2, 0, 1)
    scaled = chw.to(dtype) / torch.tensor(255, dtype=dtype)
    resized = F.interpolate(scaled[None], size=(resolution, resolution), mode="bilinear", align_corners=False,
                            antialias=False)
    mean = torch.as_tensor(IMAGENET_MEAN, dtype=dtype).view(-1, 1, 1)
    std = torch.as_tensor(IMAGENET_STD, dtype=dtype).view(-1, 1, 1)
    return (resized - mean) / std


@dataclass(frozen=True)
class Selection:
    """The top ``num_select`` (query, class) pairs of one image, by descending score."""

    scores: Tensor  # (K,) sigmoid of the class logit
    slots: Tensor  # (K,) logit slot = COCO category id (0 and never-annotated ids are unused slots)
    queries: Tensor  # (K,) query index, into RawOutputs' query axis
    boxes: Tensor  # (K, 4) x1 y1 x2 y2 in original-image pixels, clamped to the image


def select(raw: RawOutputs, index: int, original_hw: tuple[int, int], num_select: int) -> Selection:
    """rfdetr's top-k selection and box decoding for image ``index`` of the batch."""
    logits = raw.logits[index]
    scores_flat = logits.sigmoid().reshape(-1)
    count = min(num_select, scores_flat.shape[0])
    order = torch.argsort(scores_flat, descending=True, stable=True)[:count]
    classes = logits.shape[-1]
    queries = order // classes
    cx, cy, w, h = raw.boxes[index].unbind(-1)
    w, h = w.clamp(min=0.0), h.clamp(min=0.0)
    corners = torch.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], dim=-1)[queries]
    height, width = original_hw
    scale = torch.tensor([width, height, width, height]).to(corners.dtype)
    boxes = (corners * scale).clamp_min(0.0).clamp(max=scale)
    return Selection(scores_flat[order], order % classes, queries, boxes)


@dataclass(frozen=True)
class _Axis:
    """One axis of the resize: (outputs x sources) weights, and per source the outputs it reaches
    ([reach_lo, reach_hi)), per output the sources it reads ([source_lo, source_hi))."""

    weights: np.ndarray
    reach_lo: np.ndarray
    reach_hi: np.ndarray
    source_lo: np.ndarray
    source_hi: np.ndarray


@lru_cache(maxsize=16)
def _axis(in_len: int, out_len: int, dtype_name: str) -> _Axis:
    """PyTorch's bilinear resize along one axis (``align_corners=False``, size given): source
    ``max(in/out * (i + 0.5) - 0.5, 0)`` in the input's precision, taps ``floor`` and
    ``floor + 1`` (the last index repeated at the edge), weights ``1 - frac`` and ``frac``."""
    dtype = np.dtype(dtype_name)
    scale = dtype.type(in_len) / dtype.type(out_len)
    src = np.maximum(scale * (np.arange(out_len, dtype=dtype) + dtype.type(0.5)) - dtype.type(0.5), dtype.type(0))
    first = src.astype(np.int64)
    second = np.where(first < in_len - 1, first + 1, first)
    frac = np.clip(src - first.astype(dtype), 0, 1).astype(dtype)
    weights = np.zeros((out_len, in_len), dtype=dtype)
    rows = np.arange(out_len)
    np.add.at(weights, (rows, first), dtype.type(1) - frac)
    np.add.at(weights, (rows, second), frac)
    nonzero = weights != 0
    reached = nonzero.any(axis=0)
    reach_lo = np.where(reached, nonzero.argmax(axis=0), out_len)
    reach_hi = np.where(reached, out_len - nonzero[::-1].argmax(axis=0), out_len)
    source_lo = nonzero.argmax(axis=1)
    source_hi = in_len - nonzero[:, ::-1].argmax(axis=1)
    return _Axis(weights, reach_lo, reach_hi, source_lo, source_hi)


def upsample_masks(mask_logits: np.ndarray, original_hw: tuple[int, int]) -> np.ndarray:
    """(K, h, w) logits -> (K, H, W) bool: ``interpolate(bilinear) > 0`` on the window of each
    mask that can be positive (float32 or float64, in the logits' precision)."""
    logits = np.asarray(mask_logits)
    if logits.dtype not in (np.float32, np.float64):
        logits = logits.astype(np.float32)
    count, height, width = logits.shape
    canvas = MaskCanvas((count, *original_hw))
    if count == 0:
        return canvas.masks
    axis_y = _axis(height, original_hw[0], logits.dtype.name)
    axis_x = _axis(width, original_hw[1], logits.dtype.name)
    positive = logits > 0
    rows_any: np.ndarray = np.asarray(positive.any(axis=2))
    cols_any: np.ndarray = np.asarray(positive.any(axis=1))
    for i in range(count):
        rows, cols = np.flatnonzero(rows_any[i]), np.flatnonzero(cols_any[i])
        if rows.size == 0:
            continue
        r0, r1 = axis_y.reach_lo[rows[0]], axis_y.reach_hi[rows[-1]]
        c0, c1 = axis_x.reach_lo[cols[0]], axis_x.reach_hi[cols[-1]]
        s0, s1 = axis_y.source_lo[r0], axis_y.source_hi[r1 - 1]
        t0, t1 = axis_x.source_lo[c0], axis_x.source_hi[c1 - 1]
        window = axis_y.weights[r0:r1, s0:s1] @ (logits[i, s0:s1, t0:t1] @ axis_x.weights[c0:c1, t0:t1].T)
        np.greater(window, 0, out=canvas.window(i, slice(r0, r1), slice(c0, c1)))
    return canvas.masks


_LABEL_BY_SLOT = np.full(max(COCO_CATEGORY_IDS) + 1, -1, dtype=np.int64)
_LABEL_BY_SLOT[list(COCO_CATEGORY_IDS)] = np.arange(len(COCO_CATEGORY_IDS))


def slot_to_label(slots: np.ndarray) -> np.ndarray:
    """Logit slots (COCO category ids) -> maskbench's contiguous labels 0..79; -1 for the unused
    slots (0 and the ids COCO never annotated)."""
    return _LABEL_BY_SLOT[np.asarray(slots, dtype=np.int64)]


def to_detections(raw: RawOutputs, index: int, original_hw: tuple[int, int], num_select: int) -> Detections:
    """maskbench Detections (contiguous labels, original-image masks). Selections in an unused
    slot are dropped: they have no COCO class to be scored with."""
    chosen = select(raw, index, original_hw, num_select)
    labels = slot_to_label(chosen.slots.numpy())
    keep = np.flatnonzero(labels >= 0)
    mask_logits = raw.mask_logits[index][chosen.queries[torch.from_numpy(keep)]]
    return Detections(chosen.boxes[keep].float().numpy(), chosen.scores[keep].float().numpy(), labels[keep],
                      upsample_masks(mask_logits.numpy(), original_hw))
