"""Second stage: RoI feature extraction, box head, class-wise NMS and the mask head.

Computes what MMDetection's ``StandardRoIHead`` computes at test time with
``SingleRoIExtractor`` (RoIAlign ``aligned=True``, adaptive sampling, ``finest_scale=56``),
``Shared2FCBBoxHead`` or ``Shared4Conv1FCBBoxHead`` and ``FCNMaskHead``. Parameter names follow
the checkpoints (``shared_fcs.0``, ``shared_convs.0.conv``/``.bn``, ``convs.0.conv``,
``upsample``, ``conv_logits``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..nms import batched_nms, fill_with_suppressed, torchvision_ops
from .box_coder import decode_deltas

BOX_DELTA_STDS = (0.1, 0.1, 0.2, 0.2)


@dataclass(frozen=True)
class DetectionConfig:
    """MMDetection's ``test_cfg.rcnn`` plus maskbench's fixed-count benchmark switch.

    ``fixed_count``: always return exactly ``max_per_img`` detections so that a benchmark on
    random weights times the same mask-head and pasting work as a trained model. When fewer
    than ``min_candidates`` class scores pass ``score_thr``, the best ``min_candidates`` enter
    NMS instead (a 0.0 threshold would send ~90,000 boxes into NMS and time NMS, not the
    model); if NMS still leaves fewer than ``max_per_img``, the best suppressed candidates
    fill the rest.
    """

    score_thr: float = 0.05
    iou_threshold: float = 0.5
    max_per_img: int = 100
    mask_thr_binary: float = 0.5
    fixed_count: bool = False
    min_candidates: int = 3000


class ConvNormReLU(nn.Module):
    """MMCV's ``ConvModule`` layout: ``.conv`` then optional ``.bn`` then ReLU."""

    def __init__(self, in_channels: int, out_channels: int, with_norm: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=not with_norm)
        self.bn = nn.BatchNorm2d(out_channels) if with_norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x)


class RoIExtractor(nn.Module):
    """Pools each RoI from the FPN level that matches its size (levels P2..P5 only)."""

    def __init__(self, output_size: int, strides: Sequence[int] = (4, 8, 16, 32), finest_scale: int = 56) -> None:
        super().__init__()
        self.output_size = output_size
        self.strides = tuple(strides)
        self.finest_scale = finest_scale

    def map_levels(self, rois: torch.Tensor) -> torch.Tensor:
        scale = torch.sqrt((rois[:, 3] - rois[:, 1]) * (rois[:, 4] - rois[:, 2]))
        levels = torch.floor(torch.log2(scale / self.finest_scale + 1e-6))
        return levels.clamp(min=0, max=len(self.strides) - 1).long()

    def forward(self, features: Sequence[torch.Tensor], rois: torch.Tensor) -> torch.Tensor:
        """``rois`` is (K, 5): batch index, x1, y1, x2, y2 in input pixels."""
        channels = features[0].shape[1]
        pooled = features[0].new_zeros(rois.shape[0], channels, self.output_size, self.output_size)
        levels = self.map_levels(rois)
        for level, stride in enumerate(self.strides):
            index = torch.nonzero(levels == level).squeeze(1)
            if index.numel() == 0:
                continue
            pooled[index] = torchvision_ops().roi_align(
                features[level], rois[index], self.output_size,
                spatial_scale=1.0 / stride, sampling_ratio=0, aligned=True,
            )
        return pooled


class BBoxHead(nn.Module):
    """``Shared2FCBBoxHead`` (num_convs=0) or ``Shared4Conv1FCBBoxHead`` (num_convs=4, BN)."""

    def __init__(self, num_classes: int = 80, num_convs: int = 0, num_fcs: int = 2, with_norm: bool = False,
                 in_channels: int = 256, roi_size: int = 7, fc_channels: int = 1024) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.shared_convs = nn.ModuleList(ConvNormReLU(in_channels, in_channels, with_norm) for _ in range(num_convs))
        fc_in = [in_channels * roi_size * roi_size] + [fc_channels] * (num_fcs - 1)
        self.shared_fcs = nn.ModuleList(nn.Linear(c, fc_channels) for c in fc_in)
        self.fc_cls = nn.Linear(fc_channels, num_classes + 1)
        self.fc_reg = nn.Linear(fc_channels, num_classes * 4)

    def forward(self, roi_features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = roi_features
        for conv in self.shared_convs:
            x = conv(x)
        x = x.flatten(1)
        for fc in self.shared_fcs:
            x = F.relu(fc(x))
        return self.fc_cls(x), self.fc_reg(x)


class MaskHead(nn.Module):
    """``FCNMaskHead``: four 3x3 convs, a 2x deconv, one 1x1 conv giving 80 28x28 logits."""

    def __init__(self, num_classes: int = 80, num_convs: int = 4, with_norm: bool = False, channels: int = 256) -> None:
        super().__init__()
        self.convs = nn.ModuleList(ConvNormReLU(channels, channels, with_norm) for _ in range(num_convs))
        self.upsample = nn.ConvTranspose2d(channels, channels, 2, stride=2)
        self.conv_logits = nn.Conv2d(channels, num_classes, 1)

    def forward(self, roi_features: torch.Tensor) -> torch.Tensor:
        x = roi_features
        for conv in self.convs:
            x = conv(x)
        return self.conv_logits(F.relu(self.upsample(x)))


def select_detections(
    cls_logits: torch.Tensor,
    box_deltas: torch.Tensor,
    proposals: torch.Tensor,
    img_shape: tuple[int, int],
    config: DetectionConfig,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Class-wise NMS for ONE image (MMDetection's ``multiclass_nms``); boxes in resized pixels."""
    num_rois = proposals.shape[0]
    num_classes = cls_logits.shape[1] - 1
    scores = F.softmax(cls_logits, dim=-1)[:, :-1].reshape(-1)
    boxes = decode_deltas(
        proposals.repeat_interleave(num_classes, dim=0), box_deltas.reshape(-1, 4), BOX_DELTA_STDS, img_shape
    )
    labels = torch.arange(num_classes, device=scores.device).repeat(num_rois)
    candidates = torch.nonzero(scores > config.score_thr).squeeze(1)
    if config.fixed_count and candidates.numel() < config.min_candidates:
        candidates = scores.topk(min(config.min_candidates, scores.numel())).indices
    keep = candidates[batched_nms(boxes[candidates], scores[candidates], labels[candidates], config.iou_threshold)]
    keep = keep[: config.max_per_img]
    if config.fixed_count and keep.numel() < config.max_per_img:
        keep = fill_with_suppressed(scores, candidates, keep, config.max_per_img)
    return boxes[keep], scores[keep], labels[keep]
