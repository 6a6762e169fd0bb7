"""RF-DETR-Seg pre- and post-processing as rfdetr 1.11.2's ``predict`` does it.

Pre: RGB, scaled to [0, 1] (division by 255), stretched to the square resolution (bilinear,
no antialias), normalised with ImageNet's mean and std. Post (rfdetr's ``PostProcess``): sigmoid
scores, the top ``num_select`` of all (query, class) pairs (stable descending sort), cxcywh ->
xyxy scaled to the original image and clamped to it; each selected query's quarter-resolution
mask logits resized bilinearly straight to the original image and thresholded at > 0.

The mask resize is the RTMDet-Ins trap again (100-300 masks at 1600x900): torch-free
:func:`maskbench.pipeline.postprocess.upsample_masks` computes each mask only on the window where
it can be positive, with PyTorch's own bilinear indices and weights (:mod:`maskbench.pipeline.bilinear`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor

from ...data.coco_classes import COCO_CATEGORY_IDS
from ...pipeline.detections import Detections
from ...pipeline.postprocess import upsample_masks
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


LABEL_BY_SLOT = np.full(max(COCO_CATEGORY_IDS) + 1, -1, dtype=np.int64)
LABEL_BY_SLOT[list(COCO_CATEGORY_IDS)] = np.arange(len(COCO_CATEGORY_IDS))


def slot_to_label(slots: np.ndarray) -> np.ndarray:
    """Logit slots (COCO category ids) -> maskbench's contiguous labels 0..79; -1 for the unused
    slots (0 and the ids COCO never annotated)."""
    return LABEL_BY_SLOT[np.asarray(slots, dtype=np.int64)]


def to_detections(raw: RawOutputs, index: int, original_hw: tuple[int, int], num_select: int) -> Detections:
    """maskbench Detections (contiguous labels, original-image masks). Selections in an unused
    slot are dropped: they have no COCO class to be scored with."""
    chosen = select(raw, index, original_hw, num_select)
    labels = slot_to_label(chosen.slots.numpy())
    keep = np.flatnonzero(labels >= 0)
    mask_logits = raw.mask_logits[index][chosen.queries[torch.from_numpy(keep)]]
    return Detections(chosen.boxes[keep].float().numpy(), chosen.scores[keep].float().numpy(), labels[keep],
                      upsample_masks(mask_logits.numpy(), original_hw))
