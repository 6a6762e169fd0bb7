"""The detector as ONE traceable function: what the exported ONNX graph computes.

``MaskRCNN.forward`` is eager code: it loops over a batch and takes Python branches on tensor
sizes (``if candidates.numel() < min_candidates``, ``if index.numel() == 0``). Tracing, which the
TorchScript ONNX exporter does, freezes each such branch the way it went on the tracing frame,
so the graph would compute something else on a frame where it goes the other way. This module
computes the same thing for ONE image without data-dependent Python control flow:

- backbone, FPN, RPN and proposal selection: the model's own ``extract_features`` and
  ``propose`` (their remaining branches depend on static shapes only: fixed input size), with
  :func:`shifted_nms` as the RPN's class-aware NMS: ``models.nms.batched_nms`` reproduces MMCV's
  kernel for eager parity, whose tie order comes from an unstable sort and which loops over
  classes above 10,000 boxes (size-dependent branches a trace would freeze); without tied scores
  both keep the same boxes in the same order (tests compare eager and exported detectors); with
  ties eager follows torch's unstable sort and no ONNX graph can (``verify/conversion_check.py``:
  checked frames must not saturate);
- :func:`extract_rois`: ``RoIExtractor.forward`` without skipping empty levels (RoIAlign on
  zero boxes is fine) and with a concatenation + inverse permutation instead of indexed
  assignment, which the exporter gets wrong when a level's count changes;
- :func:`select_detections_graph`: ``roi_heads.select_detections`` with its ``fixed_count``
  branches made branch-free: candidates are ``score > score_thr`` OR among the
  ``min_candidates`` best (the same set as eager in both branches), and the top-up with
  suppressed boxes is a top-k with kept boxes first;
- the mask head and the per-label probability map as in ``MaskRCNN.predict_masks``.

Eager results of this function equal ``MaskRCNN.forward``'s (tests check both fixed-count
branches and the end-to-end outputs); the models' own code is left as it is.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import nms, roi_align

from ..models.mask_rcnn.box_coder import decode_deltas
from ..models.mask_rcnn.model import MaskRCNN
from ..models.mask_rcnn.roi_heads import BOX_DELTA_STDS, DetectionConfig, RoIExtractor
from .graph_batch import image_of, image_shape, per_image


def extract_rois(extractor: RoIExtractor, features: Sequence[torch.Tensor], rois: torch.Tensor) -> torch.Tensor:
    """``extractor(features, rois)`` without data-dependent branches."""
    levels = extractor.map_levels(rois)
    pooled: list[torch.Tensor] = []
    orders: list[torch.Tensor] = []
    for level, stride in enumerate(extractor.strides):
        index = torch.nonzero(levels == level).reshape(-1)
        pooled.append(roi_align(features[level], rois[index], extractor.output_size,
                                spatial_scale=1.0 / stride, sampling_ratio=0, aligned=True))
        orders.append(index)
    # pooled rows are grouped by level; put them back in the order of ``rois``.
    order = torch.cat(orders)
    inverse = torch.zeros_like(order).scatter(0, order, torch.arange(order.shape[0], device=order.device))
    return torch.cat(pooled)[inverse]


def shifted_nms(boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """MMCV's class-aware NMS (boxes shifted by ``class * (max_coordinate + 1)``, one NMS), as
    ``models.nms.batched_nms`` computes it, without its data-dependent branches: no empty-input
    branch, no per-class loop above 10,000 boxes (same decisions up to float rounding at the
    IoU threshold), and the order of tied scores is the graph's (ONNX ``TopK``: lower index first)
    rather than an unstable sort's. Without ties the kept boxes and their order are eager's.

    The maximum is taken over the boxes and 0 so that it is defined on zero boxes too; boxes
    here are clipped to the image (>= 0), so the value, and the arithmetic, are the eager ones.
    """
    max_coordinate = torch.cat([boxes.reshape(-1), boxes.new_zeros(1)]).max()
    offsets = idxs.to(boxes) * (max_coordinate + 1)
    return nms(boxes + offsets[:, None], scores, iou_threshold)


def select_detections_graph(
    cls_logits: torch.Tensor,
    box_deltas: torch.Tensor,
    proposals: torch.Tensor,
    img_shape,
    config: DetectionConfig,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``roi_heads.select_detections`` without data-dependent Python branches.

    ``img_shape`` is (h, w) as ints or as a 2-element tensor (a graph input).
    """
    num_classes = cls_logits.shape[1] - 1
    scores = F.softmax(cls_logits, dim=-1)[:, :-1].reshape(-1)
    boxes = decode_deltas(
        proposals.repeat_interleave(num_classes, dim=0), box_deltas.reshape(-1, 4), BOX_DELTA_STDS, img_shape
    )
    labels = torch.arange(scores.shape[0], device=scores.device) % num_classes
    chosen = scores > config.score_thr
    if config.fixed_count:
        # Eager: if fewer than min_candidates pass, the best min_candidates instead. Both
        # branches give "passing OR among the best min_candidates" (the best include every
        # passing score when few pass; every one of the best passes when many do).
        count = config.min_candidates
        padded = torch.cat([scores, scores.new_full((count,), -1.0)])  # top-k needs >= count values
        best = padded.topk(count).indices
        best = best[best < scores.shape[0]]
        chosen = chosen | (torch.zeros_like(scores).scatter(0, best, torch.ones_like(best, dtype=scores.dtype)) > 0)
    candidates = torch.nonzero(chosen).reshape(-1)
    cand_boxes, cand_scores = boxes[candidates], scores[candidates]
    order = shifted_nms(cand_boxes, cand_scores, labels[candidates], config.iou_threshold)
    if not config.fixed_count:
        keep = candidates[order[: config.max_per_img]]
        return boxes[keep], scores[keep], labels[keep]
    # Eager: the first max_per_img kept; if fewer, topped up with the best suppressed ones, and
    # with copies of the best candidate if there are fewer candidates than that in all. As one
    # top-k: kept boxes rank above suppressed ones (scores are in [0, 1]), copies rank last.
    count = config.max_per_img
    kept = torch.zeros_like(cand_scores).scatter(0, order, torch.full_like(order, 2, dtype=cand_scores.dtype))
    rank_key = torch.cat([cand_scores + kept, cand_scores.new_full((count,), -1.0)])
    top = rank_key.topk(count).indices
    best_candidate = candidates[cand_scores.argmax().reshape(1)]
    fill = torch.where(top < candidates.shape[0], top, torch.zeros_like(top))
    selected = torch.where(top < candidates.shape[0], candidates[fill], best_candidate)
    # Eager sorts the merged list stably by score; ONNX TopK breaks ties by lower index too.
    selected = selected[scores[selected].topk(count).indices]
    return boxes[selected], scores[selected], labels[selected]


class DetectorGraph(nn.Module):
    """One image in, ``(boxes, scores, labels, mask_probs)`` out: the exported computation
    (a static batch: backbone, FPN once, the rest per image, :mod:`.graph_batch`).

    ``img_shape``: fixed (h, w) ints (stretch input: the graph has one input), or ``None``: the
    resized shape is a second input, an int64 tensor ``[h, w]`` (keep-ratio input; ``(B, 2)`` for a batch).
    """

    def __init__(self, model: MaskRCNN, img_shape: tuple[int, int] | None) -> None:
        super().__init__()
        self.model = model
        self.img_shape = None if img_shape is None else (int(img_shape[0]), int(img_shape[1]))

    def forward(self, images: torch.Tensor, img_shape: torch.Tensor | None = None):
        features = self.model.extract_features(images)
        count = images.shape[0]
        return per_image(count, lambda i: self.detect(image_of(features, i, count),
                                                      image_shape(self.img_shape, img_shape, i)))

    def detect(self, features: list[torch.Tensor], shape) -> tuple[torch.Tensor, ...]:
        """One image's detections from its features (batch axis of one)."""
        model = self.model
        proposals = model.propose(features, [shape], nms=shifted_nms)[0]
        rois = torch.cat([proposals.new_zeros((proposals.shape[0], 1)), proposals], dim=1)
        roi_head = model.roi_head
        cls_logits, box_deltas = roi_head.bbox_head(extract_rois(roi_head.bbox_roi_extractor, features[:4], rois))
        boxes, scores, labels = select_detections_graph(cls_logits, box_deltas, proposals, shape,
                                                        model.detection_config)
        det_rois = torch.cat([boxes.new_zeros((boxes.shape[0], 1)), boxes], dim=1)
        logits = roi_head.mask_head(extract_rois(roi_head.mask_roi_extractor, features[:4], det_rois))
        mask_probs = logits[torch.arange(labels.shape[0], device=labels.device), labels].sigmoid()
        return boxes, scores, labels, mask_probs
