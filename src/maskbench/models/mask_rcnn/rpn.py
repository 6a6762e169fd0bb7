"""Region proposal network: MMDetection's ``RPNHead`` and its test-time proposal selection.

Per FPN level the top ``nms_pre`` anchors by objectness are kept (a sort, as MMDetection does),
decoded against the resized image, boxes of zero width/height dropped, then NMS runs *per
level* (levels never suppress each other) and the best ``max_per_img`` survive.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..nms import batched_nms
from .box_coder import decode_deltas


@dataclass(frozen=True)
class ProposalConfig:
    """MMDetection's ``test_cfg.rpn`` for every zoo model."""

    nms_pre: int = 1000
    max_per_img: int = 1000
    iou_threshold: float = 0.7
    min_bbox_size: float = 0.0


class RPNHead(nn.Module):
    def __init__(self, in_channels: int = 256, num_anchors: int = 3) -> None:
        super().__init__()
        self.rpn_conv = nn.Conv2d(in_channels, in_channels, 3, padding=1)
        self.rpn_cls = nn.Conv2d(in_channels, num_anchors, 1)
        self.rpn_reg = nn.Conv2d(in_channels, num_anchors * 4, 1)

    def forward(self, features: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        objectness, deltas = [], []
        for feature in features:
            hidden = F.relu(self.rpn_conv(feature))
            objectness.append(self.rpn_cls(hidden))
            deltas.append(self.rpn_reg(hidden))
        return objectness, deltas


def select_proposals(
    objectness: Sequence[torch.Tensor],
    deltas: Sequence[torch.Tensor],
    anchors: Sequence[torch.Tensor],
    img_shape: tuple[int, int],
    config: ProposalConfig = ProposalConfig(),
    nms: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, float], torch.Tensor] = batched_nms,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Proposals (K, 4) and their scores for ONE image; inputs are that image's maps (A, H, W).
    ``nms``: MMCV's class-aware NMS (:func:`..nms.batched_nms`, eager parity); the export graph
    gives its branch-free equivalent (``export.graph.shifted_nms``)."""
    level_boxes, level_scores, level_ids = [], [], []
    for level, (logits, level_deltas, level_anchors) in enumerate(zip(objectness, deltas, anchors)):
        scores = logits.permute(1, 2, 0).reshape(-1).sigmoid()
        level_deltas = level_deltas.permute(1, 2, 0).reshape(-1, 4)
        if 0 < config.nms_pre < scores.shape[0]:
            scores, order = scores.sort(descending=True)
            scores, order = scores[: config.nms_pre], order[: config.nms_pre]
            level_deltas, level_anchors = level_deltas[order], level_anchors[order]
        level_boxes.append(decode_deltas(level_anchors, level_deltas, max_shape=img_shape))
        level_scores.append(scores)
        level_ids.append(torch.full_like(scores, level, dtype=torch.long))
    boxes, scores, ids = torch.cat(level_boxes), torch.cat(level_scores), torch.cat(level_ids)
    if config.min_bbox_size >= 0:
        widths, heights = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        valid = (widths > config.min_bbox_size) & (heights > config.min_bbox_size)
        boxes, scores, ids = boxes[valid], scores[valid], ids[valid]
    keep = nms(boxes, scores, ids, config.iou_threshold)[: config.max_per_img]
    return boxes[keep], scores[keep]
