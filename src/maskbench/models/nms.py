"""Class-aware NMS with MMCV's arithmetic and MMCV's tie-breaking.

Two details of MMCV's ``batched_nms`` decide which boxes survive, and torchvision's own
``batched_nms`` differs in both (each measured against MMDetection 3.3 on CPU):
- Coordinates: MMCV shifts each class's boxes by ``class * (max_coordinate + 1)`` and runs NMS
  on the shifted boxes; torchvision (above 1,000 boxes on CPU) runs per class on raw
  coordinates. float32 rounding of the shift moves IoUs sitting at the threshold (a pair at IoU
  0.7000003 is suppressed by one and kept by the other).
- Ties: MMCV's CPU kernel orders boxes with an *unstable* descending sort, torchvision's with a
  stable one. Equal scores are common where sigmoid saturates at exactly 1.0 (RPN objectness),
  and the order of equal boxes changes which one suppresses the other.
So the order is computed here exactly as MMCV's kernel does, and torchvision's NMS (same IoU
formula: ``inter / (area_i + area_j - inter) > threshold``) is fed strictly decreasing ranks
so that it follows that order. Above ``SPLIT_THRESHOLD`` boxes MMCV loops over classes, then
re-sorts the survivors; that path is reproduced too.
"""

from __future__ import annotations

import torch


def torchvision_ops():
    """``torchvision.ops``, imported on first use: importing torchvision costs ~170 MB of
    resident memory (its compiled ops), which a deployment on a graph runtime never needs."""
    import torchvision.ops

    return torchvision.ops

SPLIT_THRESHOLD = 10_000  # MMCV's ``split_thr`` default


def _nms_in_mmcv_order(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    order = scores.sort(descending=True).indices  # unstable, as MMCV's nms_cpu
    ranks = torch.arange(order.numel(), 0, -1, device=boxes.device).to(boxes.dtype)
    return order[torchvision_ops().nms(boxes[order], ranks, iou_threshold)]


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Indices kept, by descending score; boxes of different ``idxs`` never suppress each other."""
    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.int64, device=boxes.device)
    offsets = idxs.to(boxes) * (boxes.max() + torch.tensor(1).to(boxes))
    shifted = boxes + offsets[:, None]
    if shifted.shape[0] < SPLIT_THRESHOLD:
        return _nms_in_mmcv_order(shifted, scores, iou_threshold)
    kept = torch.zeros_like(scores, dtype=torch.bool)
    for class_id in torch.unique(idxs):
        members = (idxs == class_id).nonzero().view(-1)
        kept[members[_nms_in_mmcv_order(shifted[members], scores[members], iou_threshold)]] = True
    keep = kept.nonzero().view(-1)
    return keep[scores[keep].sort(descending=True).indices]


def fill_with_suppressed(scores: torch.Tensor, candidates: torch.Tensor, keep: torch.Tensor,
                          count: int) -> torch.Tensor:
    """Top up ``keep`` with the best candidates NMS removed, so the count is fixed."""
    suppressed = candidates[~torch.isin(candidates, keep)]
    suppressed = suppressed[scores[suppressed].argsort(descending=True)]
    extra = suppressed[: count - keep.numel()]
    if keep.numel() + extra.numel() < count:  # fewer boxes than ``count`` in all: repeat the best
        extra = torch.cat([extra, candidates[:1].repeat(count - keep.numel() - extra.numel())])
    merged = torch.cat([keep, extra])
    return merged[scores[merged].argsort(descending=True, stable=True)]
