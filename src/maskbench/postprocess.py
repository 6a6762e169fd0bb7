"""From network outputs to original-image detections: rescale boxes, paste masks.

Mask pasting follows MMDetection's CPU path (``FCNMaskHead._predict_by_feat_single`` with
``skip_empty``): each 28x28 probability map is sampled with ``grid_sample``
(``align_corners=False``) at the pixel centres of a window around its box, then thresholded at
``mask_thr_binary`` (>=). Doing it per box on that window only costs far less than pasting into
the whole image, and gives MMDetection's exact pixels.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .detections import Detections
from .models.mask_rcnn import RawDetections
from .preprocess import ImageMeta


def rescale_boxes(boxes: torch.Tensor, meta: ImageMeta) -> torch.Tensor:
    w_scale, h_scale = meta.scale_factor
    return boxes / boxes.new_tensor([w_scale, h_scale, w_scale, h_scale])


def paste_mask(mask_prob: torch.Tensor, box: torch.Tensor, img_h: int, img_w: int,
               threshold: float = 0.5) -> tuple[torch.Tensor, tuple[slice, slice]]:
    """Binary mask of one detection on the window it covers, and that window's slices."""
    x0_int = int(torch.clamp(box[0].floor() - 1, min=0))
    y0_int = int(torch.clamp(box[1].floor() - 1, min=0))
    x1_int = int(torch.clamp(box[2].ceil() + 1, max=img_w))
    y1_int = int(torch.clamp(box[3].ceil() + 1, max=img_h))
    x0, y0, x1, y1 = box.float().unbind()  # float32 tensors, as in MMDetection's arithmetic
    img_y = torch.arange(y0_int, y1_int, dtype=torch.float32) + 0.5
    img_x = torch.arange(x0_int, x1_int, dtype=torch.float32) + 0.5
    img_y = (img_y - y0) / (y1 - y0) * 2 - 1
    img_x = (img_x - x0) / (x1 - x0) * 2 - 1
    # A zero-size box gives inf; MMDetection sets those coordinates to 0.
    img_x = torch.where(torch.isinf(img_x), torch.zeros_like(img_x), img_x)
    img_y = torch.where(torch.isinf(img_y), torch.zeros_like(img_y), img_y)
    grid = torch.stack(torch.broadcast_tensors(img_x[None, :], img_y[:, None]), dim=-1)
    sampled = F.grid_sample(mask_prob[None, None].float(), grid[None], align_corners=False)[0, 0]
    return sampled >= threshold, (slice(y0_int, y1_int), slice(x0_int, x1_int))


def paste_masks(mask_probs: torch.Tensor, boxes: torch.Tensor, img_h: int, img_w: int,
                threshold: float = 0.5) -> np.ndarray:
    """(N, img_h, img_w) bool masks from (N, 28, 28) probabilities and original-image boxes."""
    masks = np.zeros((boxes.shape[0], img_h, img_w), dtype=bool)
    for i in range(boxes.shape[0]):
        window, (rows, cols) = paste_mask(mask_probs[i], boxes[i], img_h, img_w, threshold)
        masks[i, rows, cols] = window.numpy()
    return masks


def to_detections(raw: RawDetections, meta: ImageMeta, mask_threshold: float = 0.5) -> Detections:
    boxes = rescale_boxes(raw.boxes.float(), meta)
    img_h, img_w = meta.ori_shape
    masks = paste_masks(raw.mask_probs.float().cpu(), boxes.cpu(), img_h, img_w, mask_threshold)
    return Detections(
        boxes=boxes.cpu().numpy().astype(np.float32),
        scores=raw.scores.float().cpu().numpy(),
        labels=raw.labels.cpu().numpy().astype(np.int64),
        masks=masks,
    )
